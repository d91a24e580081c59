"""``@sf.pipeline(trigger=sf.on_new_objects(...))``: checked where it is declared and when the pipeline compiles (each
error names the line of ``sf.on_new_objects`` and how to fix it), and recorded in the Plan outside its digest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sparkflow as sf
from sparkflow.compiler import plan_pipeline
from sparkflow.errors import CompileError, DefinitionError, Origin
from sparkflow.loading import load_pipeline
from sparkflow.plan import Plan, StartTrigger
from sparkflow.triggers import TriggerError, WatchedFolder, watched_folder

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
BAD = RESOURCES / "bad_triggers.py"
ARRIVALS = Path(__file__).resolve().parents[1] / "ship" / "resources" / "arrivals" / "pipeline.py"


def line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("misspelt", r"the pipeline reads no source 'bookz': did you mean 'books'\? \(its sources: books\)"),
        (
            "local_folder",
            r"source 'local' \(.*:6\): 'data/books/' is not in object storage: a trigger watches a folder",
        ),
        ("one_object", r"is one object, not a folder: .* e\.g\. s3://in-bucket/books/"),
        (
            "required_param",
            r"parameter 'n' \(.*bad_triggers\.py:8\) has no default, and a run a new object starts gets no value for "
            r"it: give it one, e\.g\. sf\.param\('n', default=\.\.\.\)",
        ),
        (
            "writes_where_it_watches",
            r"the watched folder s3://in-bucket/books/ and the storage root s3://in-bucket/ overlap, so every run's "
            "own writes would start more runs",
        ),
    ],
)
def test_a_trigger_no_event_can_run_is_a_compile_error_at_its_line(name: str, problem: str) -> None:
    pipeline = load_pipeline(str(BAD), name)
    assert pipeline.trigger is not None
    where = f"{BAD}:{pipeline.trigger.origin.line}: trigger=sf.on_new_objects("
    assert pipeline.trigger.origin.line == line_of(BAD, f"def {name}():") - 1
    with pytest.raises(CompileError, match=re.escape(where) + ".*" + problem):
        plan_pipeline(pipeline, "aws")


def test_what_is_not_a_trigger_is_refused_where_it_is_declared() -> None:
    def pipeline() -> None:
        pass

    where = re.escape(f"{__file__}:{pipeline.__code__.co_firstlineno}: trigger='books' is not a trigger: ")
    with pytest.raises(DefinitionError, match=where + r"use trigger=sf\.on_new_objects\(source\)"):
        sf.pipeline(trigger="books")(pipeline)  # type: ignore[arg-type]
    local = sf.source("local", "data/books/", format="text")
    line = line_of(Path(__file__), "# refused " + "here")
    with pytest.raises(DefinitionError, match=re.escape(f"{__file__}:{line}: on_new_objects('local'): source ")):
        sf.on_new_objects(local)  # refused here
    with pytest.raises(DefinitionError, match=r"pass a source of the pipeline or its name"):
        sf.on_new_objects(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("uri", "folder"),
    [
        ("s3://in-bucket/books/", WatchedFolder("s3", "in-bucket", "books/")),
        ("gs://in_bucket/a/b/", WatchedFolder("gs", "in_bucket", "a/b/")),
        ("s3://in-bucket/", WatchedFolder("s3", "in-bucket", "")),
        ("s3://in-bucket", WatchedFolder("s3", "in-bucket", "")),
    ],
)
def test_watched_folders(uri: str, folder: WatchedFolder) -> None:
    assert watched_folder(uri) == folder


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("/data/books/", "is not in object storage"),
        ("abfs://c/books/", "is not in object storage"),
        ("s3://B/books/", "has no valid bucket name"),
        ("gs://bucket/books", "is one object, not a folder"),
    ],
)
def test_what_cannot_be_watched(uri: str, problem: str) -> None:
    with pytest.raises(TriggerError, match=problem):
        watched_folder(uri)


def test_the_trigger_is_in_the_plan_and_its_shipped_json_but_not_in_the_digest() -> None:
    pipeline = load_pipeline(str(ARRIVALS))
    plan = plan_pipeline(pipeline, "aws")
    line = line_of(ARRIVALS, "trigger=sf.on_new_objects")
    assert plan.start_trigger == StartTrigger("books", Origin(str(ARRIVALS), line))
    shipped = Plan.from_json(plan.to_json()).start_trigger
    assert shipped == StartTrigger("books", Origin("tests/ship/resources/arrivals/pipeline.py", line))
    untriggered = plan_pipeline(sf.pipeline(name=pipeline.name, storage=pipeline.storage)(pipeline.fn), "aws")
    assert untriggered.start_trigger is None and '"start_trigger"' not in untriggered.to_json()
    # How runs start is not what they execute: a new trigger keeps the deployed functions' Plan valid.
    assert plan.digest == untriggered.digest
