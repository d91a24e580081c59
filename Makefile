# The two commands: `make demo` and `make test`. Both create .venv when missing and install into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLES := $(wildcard examples/*/pipeline.py)
TARGETS := aws gcp

.PHONY: demo test lint typecheck unit definitions check-definitions bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@for target in $(TARGETS); do $(BIN)/sparkflow compile $(EXAMPLES) --target $$target; done
	$(BIN)/sparkflow run examples/wordcount/pipeline.py --storage .sparkflow

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# Regenerate every checked-in definition (the golden files) after a deliberate change.
definitions: $(STAMP)
	@for target in $(TARGETS); do $(BIN)/sparkflow compile $(EXAMPLES) --target $$target; done

check-definitions: $(STAMP)
	@for target in $(TARGETS); do $(BIN)/sparkflow compile $(EXAMPLES) --target $$target --check; done

bench: $(STAMP)
	$(BIN)/python bench/compile_time.py
	$(BIN)/python bench/cold_start.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
