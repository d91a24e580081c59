"""A pipeline module that fails while it is imported fails like a stage's own code: an API the engine lacks is an
EngineUnsupported naming it and the user's line, any other exception of the user's code a StageError with the user's
frames, both final (not retried); a failure the machine may cure (a lost connection) keeps its class and is retried.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.errors import EngineUnsupported
from sparkflow.loading import load_pipeline
from sparkflow.runtime.failures import StageError
from sparkflow.runtime.local import run_plan
from sparkflow.runtime.protocol import is_final
from sparkflow.targets.local import LOCAL

MODULE_LEVEL_UDF = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F
    from pyspark.sql.types import StringType

    import sparkflow as sf

    events = sf.source("events", "events.csv", schema="user STRING, amount BIGINT")


    @F.udf(StringType())
    def shout(text):
        return text.upper()


    @sf.stage
    def loud(events: DataFrame) -> DataFrame:
        return events.select(shout("user").alias("user"), "amount")


    @sf.pipeline
    def loud_users():
        return loud(events)
    """
)


def test_a_module_level_udf_on_an_engine_without_udfs_fails_once_naming_its_line(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(MODULE_LEVEL_UDF, encoding="utf-8")
    (tmp_path / "events.csv").write_text("user,amount\na,1\nb,2\n", encoding="utf-8")
    pipeline = load_pipeline(str(tmp_path / "pipeline.py"))
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "s"), engine="duckdb")
    assert summary.status == "failed"
    node = summary.nodes["loud"]
    assert node.attempts == 1
    assert node.error == (
        f"stage 'loud' failed: EngineUnsupported: {tmp_path / 'pipeline.py'}:10: the duckdb engine cannot run "
        "functions.udf, which the "
        "pipeline module uses while it is imported (module 'sqlframe.duckdb.functions' has no attribute 'udf'); run "
        'the pipeline\'s stages on Spark: @sf.pipeline(engine="spark"), or `sparkflow run --engine spark`'
    )


RAISES = textwrap.dedent(
    """
    import sparkflow as sf


    def threshold():
        raise {error}("no threshold configured")


    LIMIT = threshold()
    """
)


def test_an_exception_of_the_module_is_a_final_stage_error_with_the_users_frames(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(RAISES.format(error="ValueError"), encoding="utf-8")
    with pytest.raises(StageError) as caught:
        load_pipeline(str(tmp_path / "pipeline.py"))
    error = caught.value
    path = tmp_path / "pipeline.py"
    assert is_final(error) and error.origin is not None and (error.origin.file, error.origin.line) == (str(path), 6)
    assert str(error) == (
        f"the pipeline module {path} failed while it was imported: ValueError: no threshold configured\n"
        "Traceback (most recent call last, your code only):\n"
        f'  File "{path}", line 9, in <module>\n'
        "    LIMIT = threshold()\n"
        f'  File "{path}", line 6, in threshold\n'
        '    raise ValueError("no threshold configured")\n'
        "ValueError: no threshold configured"
    )


def test_a_failure_another_attempt_may_cure_keeps_its_class(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(RAISES.format(error="ConnectionError"), encoding="utf-8")
    with pytest.raises(ConnectionError) as caught:
        load_pipeline(str(tmp_path / "pipeline.py"))
    assert not is_final(caught.value) and not isinstance(caught.value, EngineUnsupported)
