"""engine="auto": the compiler runs a stage on Sail unless its code uses an API where Sail's answer differs from
Spark's (sparkflow/engine_differences.json: measured by make conformance and the engine suites), on Spark then, and
always on Spark on serverless Spark; plan and graph show the choice and why."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.compiler.apis import uses
from sparkflow.compiler.passes.engine_choice import differences
from sparkflow.diagram import describe
from sparkflow.errors import DefinitionError
from sparkflow.loading import load_pipeline

AUTO = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F
    from pyspark.sql.types import DoubleType

    import sparkflow as sf

    orders = sf.source("orders", "s3://bucket/orders/", format="parquet", size="1GB")
    huge = sf.source("huge", "s3://bucket/huge/", format="parquet", size="2TB")


    @F.udf(DoubleType())
    def rounded(amount):
        return amount


    def cents(frame):
        return frame.withColumn("cents", F.floor(F.col("amount") * 100))


    @sf.stage(partition_by="user")
    def totals(orders: DataFrame) -> DataFrame:
        return orders.groupBy("user").agg(F.sum("amount").alias("total"))


    @sf.stage(partition="rows")
    def priced(orders: DataFrame) -> DataFrame:
        return orders.select("user", F.expr("round(amount, 2)").alias("amount"))


    @sf.stage(partition="rows")
    def in_cents(orders: DataFrame) -> DataFrame:
        return cents(orders)


    @sf.stage(partition="rows")
    def udf_only(orders: DataFrame) -> DataFrame:
        return orders.select(rounded("amount").alias("amount"))


    @sf.stage(timeout="8h")  # 2 TB on a serverless Spark cluster: the estimate's hours, not the default 15 minutes
    def everything(huge: DataFrame) -> DataFrame:
        return huge.groupBy("user").count()


    @sf.stage(engine="duckdb", partition="rows")
    def declared(orders: DataFrame) -> DataFrame:
        return orders


    @sf.pipeline(engine="auto")
    def chosen():
        return totals(orders), priced(orders), in_cents(orders), udf_only(orders), everything(huge), declared(orders)
    """
)


@pytest.fixture
def plan(tmp_path: Path) -> Any:
    (tmp_path / "pipeline.py").write_text(AUTO, encoding="utf-8")
    return plan_pipeline(load_pipeline(str(tmp_path / "pipeline.py")), "aws")


def test_auto_runs_a_stage_on_sail_unless_its_code_uses_an_api_where_sail_differs(plan: Any) -> None:
    chosen = {task.id: (task.engine, task.engine_choice) for task in plan.tasks}
    assert chosen == {
        "totals": ("sail", "uses no API where sail differs from Spark"),
        "priced": ("spark", "uses functions.expr, where sail differs from Spark"),
        "in_cents": ("spark", "uses functions.floor, where sail differs from Spark"),  # in a helper it calls
        "udf_only": ("sail", "uses no API where sail differs from Spark"),
        "everything": ("spark", "serverless Spark runs Spark"),
        "declared": ("duckdb", ""),
    }
    assert {task.id: task.placement for task in plan.tasks}["everything"] == "serverless-spark"


def test_plan_and_graph_show_the_choice(plan: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sparkflow.cli import main

    assert describe(plan.task("totals")) == "split by key (user), function, 2048 MB, sail (auto)"
    assert describe(plan.task("declared")).endswith(", duckdb")
    shown = CliRunner().invoke(main, ["plan", str(tmp_path / "pipeline.py")])
    assert shown.exit_code == 0, shown.output
    assert (
        'engine: stage priced runs on spark (engine="auto": uses functions.expr, where sail differs from Spark)'
        in re.sub(r"\n  +", " ", shown.output)  # the notes below the table are wrapped to the terminal's width
    )


def test_every_difference_names_an_api_and_a_class() -> None:
    for engine in ("sail", "duckdb"):
        found = differences(engine)
        assert found and all(api.count(".") == 1 for api in found)
        assert set(found.values()) <= {"values differ", "types differ", "unsupported"}


def test_uses_reads_attributes_and_pyspark_names_called() -> None:
    def stage(frame: Any) -> Any:
        return frame.rdd.map(len)

    found = uses(stage)
    assert found.known and found.touches("DataFrame.rdd") and not found.touches("functions.round")
    assert not uses(len).known  # a builtin has no source: nothing is known, so auto keeps it on Spark


def test_an_unknown_choice_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(AUTO.replace('engine="auto"', 'engine="automatic"'), encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"engine='automatic' is not available; use one of: spark, sail, "):
        load_pipeline(str(tmp_path / "pipeline.py"))


def test_the_shipped_differences_are_the_conformance_baselines(tmp_path: Path) -> None:
    """sparkflow/engine_differences.json is what make conformance writes from its baseline and the differences
    sparkflow's own suites found: neither drifts from the other."""
    from tests.conformance import report

    report.write_differences(report.read_baseline(), tmp_path / "differences.json")
    assert (tmp_path / "differences.json").read_text() == report.DIFFERENCES.read_text()


def test_a_sail_package_refuses_a_stage_auto_kept_on_spark(tmp_path: Path) -> None:
    """auto kept priced on Spark (it rounds doubles): Sail functions would run it on Sail, so packaging refuses."""
    from sparkflow.compiler import compile_pipeline
    from sparkflow.errors import PackageError
    from sparkflow.targets.aws.package import package

    source = AUTO.replace(
        "return totals(orders), priced(orders), in_cents(orders), udf_only(orders), everything(huge), declared(orders)",
        "return totals(orders), priced(orders)",
    )
    (tmp_path / "pipeline.py").write_text(source, encoding="utf-8")
    pipeline = load_pipeline(str(tmp_path / "pipeline.py"))
    plan, definition = plan_pipeline(pipeline, "aws"), compile_pipeline(pipeline, "aws")
    refused = r'engine="auto" runs stage\(s\) priced \(.*pipeline.py:\d+\) \(spark: uses functions.expr, where sail '
    with pytest.raises(PackageError, match=refused):
        package(pipeline, plan, definition, tmp_path / "out", engine="sail")
