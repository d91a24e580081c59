"""Hostile names and values: stage, source and pipeline names carrying quotes, newlines, ``${``, ``$.``, YAML
anchors, unicode or 200 characters are refused at declaration with a clear error naming the user's line; hostile
source locations, reader options and key columns (which never enter the definitions) leave the emitted ASL and
Workflows YAML exactly as benign ones do, so both parse back to the same graph."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.errors import DefinitionError
from sparkflow.loading import load_pipeline

HOSTILE = {
    "double quote": 'words"x',
    "single quote": "words'x",
    "newline": "words\nx",
    "placeholder": "words${StorageRoot}",
    "json path": "$.words",
    "yaml anchor": "&words",
    "yaml alias": "*words",
    "yaml key": "words: x",
    "unicode": "wörter",
    "200 characters": "w" * 200,
}


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hostile.py"
    path.write_text("import sparkflow as sf\n" + body, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("what", ["stage", "source", "pipeline"])
def test_hostile_names_are_refused_naming_the_line(tmp_path: Path, name: str, what: str) -> None:
    stage = f"name={name!r}" if what == "stage" else ""
    source = name if what == "source" else "books"
    pipeline = f"name={name!r}" if what == "pipeline" else ""
    path = write(
        tmp_path,
        f"books = sf.source({source!r}, 'data/', format='text')\n"
        f"@sf.stage({stage})\ndef words(lines):\n    return lines\n"
        f"@sf.pipeline({pipeline})\ndef p():\n    return words(books)\n",
    )
    line = {"source": 2, "stage": 3, "pipeline": 6}[what]
    shown = re.escape(repr(name[:20]) if len(name) > 64 else repr(name))
    with pytest.raises(DefinitionError, match=rf"hostile.py:{line}: {what} name {shown}"):
        load_pipeline(str(path))


BENIGN_URI, BENIGN_SEP, BENIGN_KEY = "s3://bucket/books/", ",", "word"
HOSTILE_URI = 's3://bucket/it\'s "${StorageRoot}" $.States &anchor *alias ünï/'
HOSTILE_SEP = "\"${x}'"
HOSTILE_KEY = 'wo"rd ${x} $.y'


def pipeline_text(uri: str, sep: str, key: str) -> str:
    return (
        f"books = sf.source('books', {uri!r}, format='csv', sep={sep!r}, schema='word STRING', size='40GB')\n"
        "@sf.stage(partition='rows')\ndef clean(books):\n    return books\n"
        f"@sf.stage(partition_by={key!r})\ndef counts(clean):\n    return clean\n"
        "@sf.stage\ndef top(counts):\n    return counts\n"
        "@sf.pipeline(storage='s3://bucket/root/')\ndef books_pipeline():\n    return top(counts(clean(books)))\n"
    )


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_hostile_locations_and_options_leave_the_definitions_as_they_were(tmp_path: Path, target: str) -> None:
    (tmp_path / "benign").mkdir()
    (tmp_path / "hostile").mkdir()
    benign = write(tmp_path / "benign", pipeline_text(BENIGN_URI, BENIGN_SEP, BENIGN_KEY))
    hostile = write(tmp_path / "hostile", pipeline_text(HOSTILE_URI, HOSTILE_SEP, HOSTILE_KEY))
    benign_pipeline, hostile_pipeline = load_pipeline(str(benign)), load_pipeline(str(hostile))
    # Only the Plan's digest (hex) tells them apart: locations, options and key columns stay in the code and the
    # shipped Plan, never in the definition.
    expected = compile_pipeline(benign_pipeline, target).replace(plan_pipeline(benign_pipeline, target).digest, "#")
    text = compile_pipeline(hostile_pipeline, target).replace(plan_pipeline(hostile_pipeline, target).digest, "#")
    assert text == expected
    parsed = json.loads(text) if target == "aws" else yaml.safe_load(text)
    assert parsed == (json.loads(expected) if target == "aws" else yaml.safe_load(expected))
    assert "ünï" not in text and "anchor" not in text and "$.States" not in text
