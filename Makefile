# The two commands: `make demo` and `make test`. Both create .venv when missing and install into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLES := $(wildcard examples/*/pipeline.py)
TARGETS := aws gcp

.PHONY: demo test lint typecheck docs unit long-checks faults oracle conformance definitions check-definitions bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@for target in $(TARGETS); do $(BIN)/sparkflow compile $(EXAMPLES) --target $$target; done
	$(BIN)/sparkflow run examples/wordcount/pipeline.py --storage .sparkflow

test: $(STAMP) lint typecheck docs unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The documentation site (mkdocs.yml, docs/) into build/site, with --strict: a broken link or anchor, a page missing
# from the navigation or a reference that no longer resolves fails. Nothing is fetched from the internet.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

unit: $(STAMP)
	$(BIN)/pytest

# The longer variants of the unit tests (marked `long`): more fault kinds and examples, every combination of engine,
# format and layout, the image build's class-data-sharing training and a second zip build. Not in `unit`.
long-checks: $(STAMP)
	$(BIN)/pytest -m long

# The long randomized fault-injection campaign and the load runs (tests/faults/; a short version runs in `unit`).
# SEED=N repeats a campaign.
faults: $(STAMP)
	$(BIN)/python -m tests.faults $(if $(SEED),--seed $(SEED))

# The long differential oracle: a few hundred generated pipelines, each run by sparkflow whole and split on every
# engine and compared with one plain PySpark job (tests/oracle/; 13 cases run in `unit`). SEED=N, CASES=N,
# ENGINES=sail (only those engines' runs).
oracle: $(STAMP)
	$(BIN)/python -m tests.oracle $(if $(SEED),--seed $(SEED)) $(if $(CASES),--cases $(CASES)) $(if $(ENGINES),--engines $(ENGINES))

# PySpark's own documentation examples (pyspark.sql.functions, DataFrame, GroupedData, Column, Window) run on every
# engine and compared with Spark's results (tests/conformance/; about 7 minutes): writes the per-engine table in
# docs/engines.md and tests/conformance/baseline.json, and fails naming any regression (an entry equal in the
# baseline that is no longer). ACCEPT=1 writes a regressed entry's new class. A fixed sample runs in `unit`.
conformance: $(STAMP)
	$(BIN)/python -m tests.conformance $(if $(ACCEPT),--accept)

# Regenerate every checked-in definition (the golden files) after a deliberate change.
definitions: $(STAMP)
	@for target in $(TARGETS); do $(BIN)/sparkflow compile $(EXAMPLES) --target $$target; done
	@for target in $(TARGETS); do $(BIN)/sparkflow plan $(EXAMPLES) --target $$target --write; done

check-definitions: $(STAMP)
	@for target in $(TARGETS); do $(BIN)/sparkflow compile $(EXAMPLES) --target $$target --check; done
	@for target in $(TARGETS); do $(BIN)/sparkflow plan $(EXAMPLES) --target $$target --check; done

# One table of every performance figure, measured side by side (bench/suite.py; docs/performance.md). Its peer, Kubeflow
# Pipelines' compiler, goes into .venv-bench, never into .venv. BENCH_ARGS passes options, e.g.
# `make bench BENCH_ARGS=--quick` (1 run, 8 MiB of data, 10 and 100 stages).
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
KFP_VERSION := 2.17.3
BENCH_ARGS ?=

$(BENCH_STAMP): $(STAMP)
	test -d $(BENCH_VENV) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet kfp==$(KFP_VERSION)
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python bench/suite.py --kfp-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
