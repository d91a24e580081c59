"""engine="sail" and engine="duckdb" give what Spark gives: every example run with ``--engine sail`` and ``--engine
duckdb`` against the plain PySpark reference, a mixed Spark + DuckDB pipeline, and a table of common DataFrame
operations run on every engine.

Known differences are normalised explicitly (and listed in docs/engines.md), never hidden by a loose comparison.
"""

from __future__ import annotations

import datetime
import decimal
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan
from tests.examples import long_but
from tests.runtime.reference import reference_outputs, rows


def committed_frame(spark: Any, location: str) -> Any:
    manifest = json.loads((Path(location) / "_COMMITTED.json").read_text())
    return spark.read.parquet(*(str(Path(location) / name) for name in manifest["files"]))


def columns(frame: Any) -> list[tuple[str, str]]:
    return [(field.name, field.dataType.simpleString()) for field in frame.schema.fields]


class EveryNode:
    """A pipeline whose trace names every node an output: the reference then computes intermediate ones too."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.origin = pipeline.origin

    def trace(self) -> Any:
        trace = self.pipeline.trace()
        trace.outputs = tuple(trace.calls)
        return trace


@pytest.mark.spark
@pytest.mark.parametrize("engine", ["sail", "duckdb"])
@pytest.mark.parametrize("path", long_but("wordcount", "clickstream", "revenue"))
def test_example_equals_plain_pyspark(spark: Any, path: Path, engine: str, tmp_path: Path) -> None:
    pipeline = load_pipeline(str(path))
    summary = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(tmp_path), engine=engine)
    assert summary.status == "succeeded", summary
    expected = reference_outputs(spark, EveryNode(pipeline))
    fused = {name for node in summary.nodes.values() for name in node.fused}  # ran inside another node's tasks
    assert set(summary.outputs) <= set(expected) == set(summary.nodes) | fused
    for node_id, node in summary.nodes.items():  # every node with an output, intermediate ones included
        if node.output is not None and node.output.startswith("kv:"):  # a value, passed through the KV store
            assert node.value == pytest.approx(expected[node_id]), node_id
            continue
        assert node.output is not None
        written = committed_frame(spark, node.output)  # the engine's Parquet, read back by Spark
        assert rows(written) == rows(expected[node_id]), node_id
        assert columns(written) == columns(expected[node_id]), node_id
        assert node.rows == len(rows(expected[node_id])), node_id


MIXED = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F
    import sparkflow as sf

    events = sf.source("events", "events.csv", schema="user STRING, amount BIGINT")

    @sf.stage(engine="duckdb")
    def totals(events: DataFrame) -> DataFrame:
        return events.where(F.col("amount") > 0).groupBy("user").agg(F.sum("amount").alias("total"))

    @sf.stage
    def ranked(totals: DataFrame) -> DataFrame:
        return totals.orderBy(F.desc("total"), "user").limit(2)

    @sf.stage(engine="duckdb")
    def duck_engine(events: DataFrame) -> str:
        return type(events).__module__

    @sf.stage
    def spark_engine(events: DataFrame) -> str:
        return type(events).__module__

    @sf.pipeline
    def mixed():
        return ranked(totals(events)), duck_engine(events), spark_engine(events)
    """
)


@pytest.mark.spark
def test_stage_engines_mix_in_one_run(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(MIXED)
    (tmp_path / "events.csv").write_text("user,amount\na,5\nb,7\na,3\nc,-1\nb,1\nd,2\n")
    pipeline = load_pipeline(str(tmp_path / "pipeline.py"))
    summary = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(tmp_path / "store"))
    assert summary.status == "succeeded", summary
    assert summary.nodes["duck_engine"].value.startswith("sqlframe.duckdb")
    assert summary.nodes["spark_engine"].value.startswith("pyspark.sql")
    ranked = committed_frame(spark, summary.outputs["ranked"])
    # sum() of a BIGINT is a BIGINT, as on Spark (sparkflow/runtime/duckdb_semantics.py)
    assert [tuple(row) for row in ranked.collect()] == [("a", 8), ("b", 8)]
    assert columns(ranked) == [("user", "string"), ("total", "bigint")]


UNSUPPORTED = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F
    import sparkflow as sf

    events = sf.source("events", "events.csv", schema="user STRING, amount BIGINT")

    @sf.stage
    def shout(events: DataFrame) -> DataFrame:
        loud = F.udf(lambda text: text.upper(), "string")
        return events.select(loud("user").alias("user"))

    @sf.pipeline
    def unsupported():
        return shout(events)
    """
)


def test_unsupported_api_names_it_and_suggests_spark(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(UNSUPPORTED)
    (tmp_path / "events.csv").write_text("user,amount\na,5\n")
    pipeline = load_pipeline(str(tmp_path / "pipeline.py"))
    summary = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(tmp_path / "s"), engine="duckdb")
    node = summary.nodes["shout"]
    assert summary.status == "failed"
    assert node.attempts == 1  # a final error: retrying cannot help
    assert node.error is not None
    assert node.error.startswith(f"EngineUnsupported: {tmp_path / 'pipeline.py'}:9: stage 'shout'")
    assert "cannot run functions.udf" in node.error
    assert 'engine="spark"' in node.error


def test_text_source_lines_match_spark_reader(tmp_path: Path) -> None:
    """Spark's text reader: one row per line on \\n, \\r\\n or \\r; no row after a final newline; empty lines kept."""
    from sparkflow.dsl.source import source
    from sparkflow.runtime import duckdb_engine

    (tmp_path / "a.txt").write_bytes(b"one two\n\nthree, 'four'\r\nfive\rsix\n")
    (tmp_path / "b.txt").write_bytes(b"no final newline")
    (tmp_path / "c.txt").write_bytes(b"")
    books = source("books", str(tmp_path), format="text")
    engine = duckdb_engine.DuckDBEngine.__new__(duckdb_engine.DuckDBEngine)
    engine.session = duckdb_engine.session(512)
    frame = engine.read_source(books, str(tmp_path), str(tmp_path / "copy"))
    assert frame.columns == ["value"]
    assert sorted(row[0] for row in frame.collect()) == sorted(
        ["one two", "", "three, 'four'", "five", "six", "no final newline"]
    )


def test_many_parquet_files_are_one_read_and_a_quoted_name_is_read(tmp_path: Path) -> None:
    """A reduce task reads one file per map task: one read_parquet over all of them, not a union per file (whose
    plan grows with every file); a quote in a file's name reaches DuckDB's SQL safely."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sparkflow.dsl.source import source
    from sparkflow.runtime import duckdb_engine

    folder = tmp_path / "parts"
    folder.mkdir()
    names = [f"part-{index:03d}.parquet" for index in range(40)] + ["it's.parquet"]
    for index, name in enumerate(names):
        pq.write_table(pa.table({"id": [index * 2, index * 2 + 1], "name": [name, name]}), folder / name)
    engine = duckdb_engine.DuckDBEngine.__new__(duckdb_engine.DuckDBEngine)
    engine.session = duckdb_engine.session(512)
    frame = engine.read_source(source("parts", str(folder), format="parquet"), str(folder), str(tmp_path / "c"))
    query = frame.sql(optimize=False).upper()
    assert query.count("READ_PARQUET") == 1 and "UNION" not in query
    assert sorted(frame.collect()) == sorted(
        (index, name) for name_index, name in enumerate(names) for index in (name_index * 2, name_index * 2 + 1)
    )


def test_duckdb_stage_refused_where_not_activated(tmp_path: Path) -> None:
    from sparkflow.errors import EnvironmentProblem
    from sparkflow.runtime import duckdb_engine

    with pytest.raises(EnvironmentProblem, match="SPARKFLOW_ENGINE=duckdb"):
        duckdb_engine.DuckDBEngine(512)


# --- a table of common DataFrame operations, run on both engines -------------------------------------------------

PEOPLE = "id INT, name STRING, dept STRING, salary BIGINT, hired DATE, tags STRING"
PEOPLE_ROWS = [
    (1, "Ann", "eng", 100, datetime.date(2024, 1, 15), "a,b"),
    (2, "bob", "eng", 80, datetime.date(2023, 6, 1), "b"),
    (3, " Cy ", "ops", None, datetime.date(2022, 12, 31), None),
    (4, None, "ops", 50, None, "c,a,c"),
    (5, "Eve", None, 70, datetime.date(2024, 2, 29), ""),
    (6, "Ann", "eng", 80, datetime.date(2024, 1, 15), "a"),
]
DEPTS = "dept STRING, floor INT"
DEPT_ROWS = [("eng", 1), ("ops", 2), ("hr", 3)]

Op = Callable[[Any, Any, Any, Any], Any]  # (people, depts, functions, Window) -> DataFrame


def _join(how: str) -> Op:
    if how.startswith("left_"):  # semi / anti joins keep the left side's columns only
        return lambda p, d, F, W: d.join(p, "dept", how)
    # Not the key: after a right / full join USING a column, sqlframe's key is the left side's (see the known
    # differences below).
    return lambda p, d, F, W: p.join(d, "dept", how).select("id", "floor")


def _window(F: Any, W: Any) -> Any:
    return W.partitionBy("dept").orderBy(F.desc("salary"), "id")


# name -> (operation, columns whose numeric type differs and are compared as float, compare in order)
OPERATIONS: dict[str, tuple[Op, tuple[int, ...], bool]] = {
    "select_filter_withColumn": (
        lambda p, d, F, W: p.where(F.col("salary") > 60).withColumn("twice", F.col("salary") * 2).select("id", "twice"),
        (),
        False,
    ),
    "arithmetic_cast": (
        lambda p, d, F, W: p.select(
            "id", F.round(F.col("salary") / 3, 2).alias("third"), F.col("id").cast("string").alias("text")
        ),
        (),
        False,
    ),
    "case_when": (
        lambda p, d, F, W: p.select(
            "id", F.when(F.col("salary") >= 80, "high").when(F.col("salary").isNull(), "none").otherwise("low")
        ),
        (),
        False,
    ),
    "groupBy_count": (lambda p, d, F, W: p.groupBy("dept").count(), (), False),
    "groupBy_agg": (
        lambda p, d, F, W: p.groupBy("dept").agg(
            F.count("*").alias("n"),
            F.count("salary").alias("paid"),
            F.sum("salary").alias("total"),
            F.avg("salary").alias("mean"),
            F.min("hired").alias("first"),
            F.max("name").alias("last"),
            F.countDistinct("name").alias("names"),
        ),
        (),
        False,
    ),
    "groupBy_collect_list": (
        lambda p, d, F, W: p.groupBy("dept").agg(F.sort_array(F.collect_list("id")).alias("ids")),
        (),
        False,
    ),
    "distinct_dropDuplicates": (
        lambda p, d, F, W: (
            p.select("name", "salary").distinct().union(p.dropDuplicates(["dept"]).select("name", "salary"))
        ),
        (),
        False,
    ),
    "unionByName_rename_drop": (
        lambda p, d, F, W: (
            p.select("id", "dept").unionByName(d.withColumnRenamed("floor", "id").select("dept", "id")).drop("dept")
        ),
        (),
        False,
    ),
    **{f"join_{how}": (_join(how), (), False) for how in ("inner", "left", "right", "full", "left_semi", "left_anti")},
    "join_on_expression": (
        lambda p, d, F, W: p.join(d, (p.dept == d.dept) & (d.floor > 1), "left").select(p.id, d.floor),
        (),
        False,
    ),
    "window_ranking": (
        lambda p, d, F, W: p.select(
            "id",
            F.row_number().over(_window(F, W)).alias("row"),
            F.rank().over(_window(F, W)).alias("rank"),
            F.dense_rank().over(_window(F, W)).alias("dense"),
            F.lag("salary").over(_window(F, W)).alias("previous"),
            F.lead("id", 1, -1).over(_window(F, W)).alias("next"),
        ),
        (),
        False,
    ),
    "window_aggregates": (
        lambda p, d, F, W: p.select(
            "id",
            F.sum("salary").over(W.partitionBy("dept")).alias("dept_total"),
            F.sum("salary").over(_window(F, W).rowsBetween(W.unboundedPreceding, W.currentRow)).alias("running"),
            F.max("salary").over(W.partitionBy("dept")).alias("top"),
        ),
        (),
        False,
    ),
    "explode_split": (
        lambda p, d, F, W: p.select("id", F.explode(F.split("tags", ",")).alias("tag")),
        (),
        False,
    ),
    "string_functions": (
        lambda p, d, F, W: p.select(
            "id",
            F.upper("name"),
            F.lower("name"),
            F.length("name"),
            F.trim("name"),
            F.concat_ws("-", "name", "dept"),
            F.concat("name", F.lit("!")),
            F.substring("name", 1, 2),
            F.regexp_replace("name", "[aeiou]", "_"),
            F.regexp_extract("tags", "([a-z]),", 1),
            F.lpad("dept", 5, "*"),
            F.initcap("name"),
            F.instr("name", "n"),
        ),
        (),
        False,
    ),
    "date_functions": (
        lambda p, d, F, W: p.select(
            "id",
            F.year("hired"),
            F.month("hired"),
            F.dayofmonth("hired"),
            F.date_add("hired", 30),
            F.datediff(F.lit(datetime.date(2025, 1, 1)), "hired"),
            F.date_format("hired", "yyyy-MM"),
            F.last_day("hired"),
            F.to_date(F.lit("2024-03-05")),
            F.dayofweek("hired"),
        ),
        (),
        False,
    ),
    "add_months": (lambda p, d, F, W: p.select("id", F.add_months("hired", 1).alias("later")), (), False),
    "orderBy_limit": (
        lambda p, d, F, W: p.orderBy(F.desc("salary"), "id").limit(3).select("id", "salary"),
        (),
        True,
    ),
    "orderBy_nulls_default": (
        lambda p, d, F, W: p.orderBy("salary", "id").select("id", "salary"),  # Spark: nulls first when ascending
        (),
        True,
    ),
    "orderBy_desc_nulls": (
        lambda p, d, F, W: p.orderBy(F.col("name").desc(), "id").select("id", "name"),  # Spark: nulls last
        (),
        True,
    ),
    "null_handling": (
        lambda p, d, F, W: p.select(
            "id",
            F.coalesce("name", F.lit("?")),
            F.col("salary").isNull(),
            F.col("dept").isNotNull(),
            (F.col("salary") + 1).alias("plus"),
        ),
        (),
        False,
    ),
    "fillna_dropna": (
        lambda p, d, F, W: (
            p.fillna({"name": "anon", "salary": 0}).dropna(subset=["dept"]).select("id", "name", "salary")
        ),
        (),
        False,
    ),
}


@pytest.fixture(scope="module")
def duck() -> Any:
    from sparkflow.runtime import duckdb_engine

    return duckdb_engine.session(512)


@pytest.fixture(scope="module")
def engines(duck: Any) -> dict[str, tuple[Any, Any, Any]]:
    """Each engine's session, functions module and Window, for operations run in this (plain PySpark) process: Sail
    through PySpark's Connect modules themselves, DuckDB through sqlframe's."""
    from pyspark.sql.connect import functions as connect_functions
    from pyspark.sql.connect.window import Window as ConnectWindow
    from sqlframe.duckdb import Window as DuckWindow
    from sqlframe.duckdb import functions as duck_functions

    from sparkflow.runtime import sail_engine

    return {
        "sail": (sail_engine.session(512), connect_functions, ConnectWindow),
        "duckdb": (duck, duck_functions, DuckWindow),
    }


def normalised(frame: Any, as_float: tuple[int, ...], ordered: bool) -> list[tuple[Any, ...]]:
    found = [
        tuple(float(value) if index in as_float and value is not None else value for index, value in enumerate(row))
        for row in frame.collect()
    ]
    return found if ordered else sorted(found, key=repr)


@pytest.mark.spark
@pytest.mark.parametrize("engine", ["sail", "duckdb"])
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_operation_equal_on_every_engine(
    spark: Any, engines: dict[str, tuple[Any, Any, Any]], name: str, engine: str, tmp_path: Path
) -> None:
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as spark_functions

    operation, as_float, ordered = OPERATIONS[name]
    on_spark = operation(
        spark.createDataFrame(PEOPLE_ROWS, PEOPLE),
        spark.createDataFrame(DEPT_ROWS, DEPTS),
        spark_functions,
        SparkWindow,
    )
    session, functions, window = engines[engine]
    on_engine = operation(
        session.createDataFrame(PEOPLE_ROWS, PEOPLE), session.createDataFrame(DEPT_ROWS, DEPTS), functions, window
    )
    assert normalised(on_engine, as_float, ordered) == normalised(on_spark, as_float, ordered)
    on_spark_schema = written_schema(on_spark, tmp_path / "spark")
    expected = [KNOWN_TYPE_DIFFERENCES.get((engine, name, column), (column, kind)) for column, kind in on_spark_schema]
    assert written_schema(on_engine, tmp_path / engine, names_from=on_spark_schema) == expected


# (engine, operation, column) -> the column as the engine writes it, where it differs from Spark (docs/engines.md):
# asserted exactly, so that an engine upgrade that fixes one fails here and the entry goes.
KNOWN_TYPE_DIFFERENCES = {
    # Sail 0.7.2 (arrow-rs) names a Parquet list's element field "item", Spark "element": the same list<int>.
    ("sail", "groupBy_collect_list", "ids"): ("ids", "list<item: int32>"),
}


def written_schema(frame: Any, folder: Path, names_from: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """Names and types of the Parquet ``frame`` writes, as pyarrow reads them (what any reader of an output sees).
    Two documented differences are left out (docs/engines.md): nullability (``not null`` inside a list type) is each
    engine's own, and a column the code did not name gets another name on DuckDB, so with ``names_from`` (Spark's
    schema) such a column takes Spark's name."""
    import pyarrow.parquet as pq

    frame.write.parquet(str(folder))
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else [folder]
    found = [(field.name, str(field.type).replace(" not null", "")) for field in pq.read_schema(files[0])]
    if names_from is None:
        return found
    return [
        (theirs if "(" in theirs or " " in theirs else name, kind)
        for (name, kind), (theirs, _) in zip(found, names_from, strict=True)
    ]


# --- known differences: each asserted exactly, so that a sqlframe upgrade that fixes one shows up here ------------


@pytest.mark.spark
@pytest.mark.parametrize("how", ["right", "full"])
def test_known_difference_outer_join_using_key(spark: Any, duck: Any, how: str) -> None:
    """Selecting the key by name after a right / full join USING it: Spark gives the coalesce of both sides,
    sqlframe the left side's column (NULL for rows only on the right). The full rows agree."""
    people, depts = spark.createDataFrame(PEOPLE_ROWS, PEOPLE), spark.createDataFrame(DEPT_ROWS, DEPTS)
    on_spark = people.join(depts, "dept", how)
    people, depts = duck.createDataFrame(PEOPLE_ROWS, PEOPLE), duck.createDataFrame(DEPT_ROWS, DEPTS)
    on_duck = people.join(depts, "dept", how)
    assert normalised(on_duck, (), False) == normalised(on_spark, (), False)
    assert ("hr", 3) in normalised(on_spark.select("dept", "floor"), (), False)
    assert (None, 3) in normalised(on_duck.select("dept", "floor"), (), False)
    assert ("hr", 3) not in normalised(on_duck.select("dept", "floor"), (), False)


def test_known_difference_add_months_beside_date_add(duck: Any) -> None:
    """sqlframe 4.10: add_months in the same select as date_add repeats date_add's result (Spark: 2024-02-15)."""
    from sqlframe.duckdb import functions as F

    frame = duck.createDataFrame([(datetime.date(2024, 1, 15),)], "hired DATE")
    alone = frame.select(F.add_months("hired", 1)).collect()[0][0]
    beside = frame.select(F.date_add("hired", 30), F.add_months("hired", 1)).collect()[0]
    assert alone == datetime.date(2024, 2, 15)
    assert tuple(beside) == (datetime.date(2024, 2, 14), datetime.date(2024, 2, 14))


ROUNDED = [
    150.545,
    229.89499999999998,
    2.675,
    -2.675,
    0.5,
    -0.5,
    2.5,
    1e-9,
    0.1 + 0.2,
    5e-324,
    123456.78912345,
    9.999999999999999e17,
    1.2345678901234567e19,
    -4.834499262164541e67,
    1e300,
    float("nan"),
    float("inf"),
    None,
]


@pytest.mark.spark
@pytest.mark.parametrize("engine", ["sail", "duckdb"])
@pytest.mark.parametrize("kind", ["DOUBLE", "FLOAT"])
def test_round_of_a_floating_point_value_is_sparks(
    spark: Any, engines: dict[str, tuple[Any, Any, Any]], kind: str, engine: str
) -> None:
    """Spark rounds a DOUBLE's shortest decimal form half up (round(150.545, 2) = 150.55; bround half to even);
    DuckDB's own ROUND and Sail's scale the binary value (150.54), and DuckDB's loses digits of large values. Found
    by the oracle (seed 38)."""
    from pyspark.sql import functions as spark_functions

    session, F, _ = engines[engine]
    values = [(value,) for value in ROUNDED if kind == "DOUBLE" or value is None or abs(value) < 3e38]

    def on(session: Any, functions: Any) -> list[tuple[Any, ...]]:
        frame = session.createDataFrame(values, f"x {kind}")
        calls = [functions.round("x", places).alias(f"p{index}") for index, places in enumerate((0, 2, 3, -1))]
        if engine == "duckdb":  # SQL text keeps Sail's own rounding: test_known_difference_sail_round_in_sql_text
            calls.append(functions.expr("round(x, 2)"))
        else:
            calls += [functions.bround("x", places).alias(f"b{index}") for index, places in enumerate((0, 2, -1))]
            calls.append(functions.round("x").alias("default"))
        if kind == "DOUBLE" or engine == "sail":  # FLOAT * 10 is FLOAT on Spark, DOUBLE to sqlglot: docs/engines.md
            calls.append(functions.round(functions.round("x", 3) * 10, 1).alias("nested"))
        return [tuple(row) for row in frame.select(*calls).collect()]

    def comparable(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [tuple("nan" if value != value else value for value in row) for row in rows]  # NaN == NaN here

    assert comparable(on(session, F)) == comparable(on(spark, spark_functions))


@pytest.mark.spark
@pytest.mark.parametrize("engine", ["sail", "duckdb"])
def test_round_of_a_sum_of_doubles_and_of_a_decimal_is_sparks(
    spark: Any, engines: dict[str, tuple[Any, Any, Any]], engine: str, tmp_path: Path
) -> None:
    from pyspark.sql import functions as spark_functions

    session, F, _ = engines[engine]
    values = [("a", 150.5, "1.005"), ("a", 0.045, "2.115"), ("b", 229.89499999999998, "-0.125")]

    def on(session: Any, functions: Any) -> Any:
        frame = session.createDataFrame(values, "k STRING, x DOUBLE, d STRING").withColumn(
            "d", functions.col("d").cast("DECIMAL(10, 3)")
        )
        return frame.groupBy("k").agg(
            functions.round(functions.sum("x"), 2).alias("x"), functions.round(functions.sum("d"), 2).alias("d")
        )

    def found(frame: Any) -> list[tuple[Any, ...]]:
        return sorted((row.k, row.x, str(row.d)) for row in frame.collect())  # sqlframe collects decimals as floats

    on_engine, on_spark = on(session, F), on(spark, spark_functions)
    assert found(on_engine) == found(on_spark) == [("a", 150.55, "3.12"), ("b", 229.89, "-0.13")]
    if engine == "sail":  # a rounded decimal(20, 3) is a decimal(19, 2) on Spark (Sail: its own precision)
        assert written_schema(on_engine, tmp_path / "sail") == written_schema(on_spark, tmp_path / "spark")


@pytest.mark.parametrize(
    ("api", "call"),
    [
        ("functions.explode_outer", lambda frame, F: frame.select(F.explode_outer(F.split("tags", ",")))),
        ("functions.udf", lambda frame, F: F.udf(lambda text: text, "string")),
        ("DataFrame.sample", lambda frame, F: frame.sample(0.5)),
        ("DataFrame.mapinpandas", lambda frame, F: frame.mapInPandas(lambda batches: batches, PEOPLE)),
        # Spark gives a timestamp's epoch seconds; DuckDB has no such cast (a sessionization pipeline used it)
        ("Column.cast", lambda frame, F: frame.select(F.to_timestamp("hired").cast("long")).collect()),
    ],
)
def test_unsupported_operations_are_named(duck: Any, api: str, call: Callable[[Any, Any], Any]) -> None:
    from sqlframe.duckdb import functions as F

    from sparkflow.runtime import duckdb_engine

    with pytest.raises(Exception) as caught:
        call(duck.createDataFrame(PEOPLE_ROWS, PEOPLE), F)
    assert duckdb_engine.unsupported_api(caught.value) == api


# --- Spark's result types (duckdb_semantics.py, sail_semantics.py): issue 19's table, one test per row -----------

AMOUNT_ROWS = [
    (1, "10.05", "0.05", datetime.date(2024, 1, 31)),
    (2, "3.10", "0.10", datetime.date(2023, 6, 1)),
    (3, "0.01", "0.00", datetime.date(2024, 2, 29)),
    (4, "-7.33", "0.07", None),
    (5, None, "0.02", datetime.date(1999, 12, 31)),
]


def amounts(session: Any, functions: Any) -> Any:
    """id INT, price and discount DECIMAL(15,2), day DATE (sqlframe's schema strings cannot say DECIMAL(15,2))."""
    frame = session.createDataFrame(AMOUNT_ROWS, "id INT, price STRING, discount STRING, day DATE")
    for name in ("price", "discount"):
        frame = frame.withColumn(name, functions.col(name).cast("decimal(15,2)"))
    return frame


def decimals(session: Any, functions: Any, values: list[Any], column: str, kind: str, *others: str) -> Any:
    """Two columns, the first ``g`` (unless ``others`` names the second) and ``column`` cast to ``kind``."""
    schema = f"{column} STRING, {', '.join(others)}" if others else f"g STRING, {column} STRING"
    frame = session.createDataFrame(values, schema)
    return frame.withColumn(column, functions.col(column).cast(kind))


def _discounted(F: Any) -> Any:
    return F.col("price") * (1 - F.col("discount"))


# expression -> (a DataFrame with one column x, the type Spark gives x)
SPARK_TYPES: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "sum of a decimal(15,2)": (lambda d, F: d.agg(F.sum("price").alias("x")), "decimal128(25, 2)"),
    "avg of a decimal(15,2)": (lambda d, F: d.agg(F.avg("price").alias("x")), "decimal128(19, 6)"),
    "a ratio of decimal sums": (
        lambda d, F: d.agg(
            (100 * F.sum(F.when(F.col("id") > 1, _discounted(F)).otherwise(0)) / F.sum(_discounted(F))).alias("x")
        ),
        "decimal128(38, 6)",
    ),
    "sum of when(cond, 1).otherwise(0)": (
        lambda d, F: d.agg(F.sum(F.when(F.col("id") > 2, 1).otherwise(0)).alias("x")),
        "int64",
    ),
    "year of a date": (lambda d, F: d.select(F.year("day").alias("x")), "int32"),
}


@pytest.mark.spark
@pytest.mark.parametrize("name", list(SPARK_TYPES))
@pytest.mark.parametrize("engine", ["sail", "duckdb"])
def test_engine_writes_the_type_spark_writes(
    spark: Any, engines: dict[str, tuple[Any, Any, Any]], name: str, engine: str, tmp_path: Path
) -> None:
    """Each expression written by Spark and the engine: the Parquet type Spark writes (the issue's table says
    DuckDB's own was decimal(38,2), double, double, double and bigint; Sail's avg truncated and its ratio was a
    decimal(38,8)), and the same values, exactly."""
    from pyspark.sql import functions as spark_functions

    session, F, _ = engines[engine]
    make, kind = SPARK_TYPES[name]
    on_spark = make(amounts(spark, spark_functions), spark_functions)
    on_engine = make(amounts(session, F), F)
    assert written_schema(on_spark, tmp_path / "spark") == [("x", kind)]  # Spark's truth, as the issue says
    assert written_schema(on_engine, tmp_path / engine) == [("x", kind)]
    assert rows(spark.read.parquet(str(tmp_path / engine))) == rows(on_spark)


@pytest.mark.spark
@pytest.mark.parametrize("engine", ["sail", "duckdb"])
def test_decimal_division_and_average_round_half_up_at_spark_scale(
    spark: Any, engines: dict[str, tuple[Any, Any, Any]], engine: str, tmp_path: Path
) -> None:
    """Quotients whose next digit is 5 exactly, negative ones, and averages of 8 and 32 values (whose exact quotient
    ends in 5 past the scale): DuckDB divides decimals in floating point and Sail truncates them, sparkflow divides
    in 128-bit integers (DuckDB) or 256-bit decimals (Sail) and rounds half up."""
    from pyspark.sql import functions as spark_functions

    session, F, _ = engines[engine]

    values = [
        (group, f"{sign * number}.{(number * 37) % 100:02d}")
        for group, count, sign in (("eight", 8, 1), ("thirty-two", 32, -1), ("one", 1, 1))
        for number in range(1, count + 1)
    ]
    values += [("ties", "0.01"), ("ties", "0.02")]

    def query(frame: Any, functions: Any) -> Any:
        return frame.groupBy("g").agg(
            functions.avg("v").alias("mean"),
            (functions.sum("v") / functions.count("v").cast("decimal(10,0)")).alias("ratio"),
            (functions.min("v") / functions.max("v")).alias("spread"),
        )

    on_spark = query(decimals(spark, spark_functions, values, "v", "decimal(12,2)"), spark_functions)
    on_engine = query(decimals(session, F, values, "v", "decimal(12,2)"), F)
    assert written_schema(on_engine, tmp_path / engine) == written_schema(on_spark, tmp_path / "spark")
    assert rows(spark.read.parquet(str(tmp_path / engine))) == rows(on_spark)


@pytest.mark.spark
@pytest.mark.parametrize("engine", ["sail", "duckdb"])
def test_a_cast_to_an_integer_drops_the_fraction(
    spark: Any, engines: dict[str, tuple[Any, Any, Any]], engine: str, tmp_path: Path
) -> None:
    from pyspark.sql import functions as spark_functions

    session, F, _ = engines[engine]

    values = [("2.50", 2.5), ("-2.70", -2.7), ("7.99", 0.5)]

    def query(frame: Any, functions: Any) -> Any:
        return frame.select(
            functions.col("d").cast("int").alias("d_int"),
            functions.col("f").cast("bigint").alias("f_long"),
            functions.col("d").cast("smallint").alias("d_short"),
        )

    on_spark = query(decimals(spark, spark_functions, values, "d", "decimal(5,2)", "f DOUBLE"), spark_functions)
    on_engine = query(decimals(session, F, values, "d", "decimal(5,2)", "f DOUBLE"), F)
    assert written_schema(on_engine, tmp_path / engine) == written_schema(on_spark, tmp_path / "spark")
    assert rows(spark.read.parquet(str(tmp_path / engine))) == rows(on_spark) == [(-2, -2, -2), (2, 2, 2), (7, 0, 7)]


@pytest.mark.spark
def test_known_difference_parquet_nullability(spark: Any, duck: Any, tmp_path: Path) -> None:
    """Which columns a Parquet file marks REQUIRED is each engine's own judgement: Spark marks a count REQUIRED
    and a grouping key from a nullable column OPTIONAL; DuckDB marks neither here (and some grouping keys of
    Parquet sources REQUIRED: test_tpch_parity.py)."""
    import pyarrow.parquet as pq
    from pyspark.sql import functions as spark_functions
    from sqlframe.duckdb import functions as F

    def nullability(frame: Any, folder: Path) -> list[tuple[str, bool]]:
        frame.write.parquet(str(folder))
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else [folder]
        return [(field.name, field.nullable) for field in pq.read_schema(files[0])]

    def query(frame: Any, functions: Any) -> Any:
        return frame.groupBy(functions.year("day").alias("year")).agg(functions.count("*").alias("n"))

    on_spark = nullability(query(amounts(spark, spark_functions), spark_functions), tmp_path / "spark")
    on_duck = nullability(query(amounts(duck, F), F), tmp_path / "duck")
    assert on_spark == [("year", True), ("n", False)]
    assert on_duck == [("year", True), ("n", True)]


@pytest.mark.spark
def test_known_difference_names_of_unnamed_columns(spark: Any, duck: Any, tmp_path: Path) -> None:
    """A column the code does not name: Spark names it after the expression, sqlframe otherwise. Name it
    (``.alias(...)``) for the same name on both engines."""
    from pyspark.sql import functions as spark_functions
    from sqlframe.duckdb import functions as F

    on_spark = amounts(spark, spark_functions).select(spark_functions.year("day"))
    on_duck = amounts(duck, F).select(F.year("day"))
    assert written_schema(on_spark, tmp_path / "spark") == [("year(day)", "int32")]
    assert written_schema(on_duck, tmp_path / "duck") == [("year__day__", "int32")]


def test_known_difference_joining_again_what_a_semi_join_used(duck: Any) -> None:
    """A frame semi-joined with one derived from a second frame, then joined with that second frame again, fails
    on DuckDB (sqlframe 4.10 loses the CTE): the stage fails, naming DuckDB's error; nothing is written."""
    from sqlframe.duckdb import functions as F

    items = duck.createDataFrame([(1, 5), (1, 7), (2, 1)], "k INT, q INT")
    orders = duck.createDataFrame([(1, "a"), (2, "b")], "o INT, name STRING")
    large = items.groupBy("k").agg(F.sum("q").alias("total")).where(F.col("total") > 3)
    joined = orders.join(large, F.col("o") == F.col("k"), "left_semi").join(items, F.col("o") == F.col("k"))
    with pytest.raises(Exception, match=r"Referenced table .* not found"):
        joined.collect()


# --- Sail: Spark's values and types (sparkflow/runtime/sail_semantics.py), and its known differences ------------


@pytest.mark.spark
def test_sail_decimal_average_rounds_half_up(spark: Any, engines: dict[str, tuple[Any, Any, Any]]) -> None:
    """avg of a decimal(p, s) is a decimal(p + 4, s + 4) whose last place Spark rounds half up (Sail 0.7.2 alone
    truncates it: TPC-H q1), in an agg, a groupBy and a window; a group of NULLs has NULL."""
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as F

    session, connect_functions, window = engines["sail"]
    values = [("a", "1.00"), ("a", "2.00"), ("a", "2.00"), ("b", "-1.00"), ("b", "-2.00"), ("b", "-2.00"), ("c", None)]

    def averages(on: Any, functions: Any, over: Any) -> tuple[Any, ...]:
        frame = on.createDataFrame(values, "g STRING, x STRING").withColumn(
            "x", functions.col("x").cast("DECIMAL(10, 2)")
        )
        whole = frame.agg(functions.avg("x").alias("mean"), functions.mean("x").alias("also"))
        grouped = frame.groupBy("g").agg(functions.avg("x").alias("mean"), functions.avg(functions.col("x")).alias("m"))
        windowed = frame.select("g", functions.avg("x").over(over.partitionBy("g")).alias("mean"))
        return (
            [tuple(row) for row in whole.collect()],
            columns(whole),
            sorted(tuple(row) for row in grouped.collect()),
            columns(grouped),
            sorted(tuple(row) for row in windowed.collect()),
            columns(windowed)[1:],
        )

    expected = averages(spark, F, SparkWindow)
    assert expected[0] == [(decimal.Decimal("0.000000"), decimal.Decimal("0.000000"))]
    assert expected[2][0] == ("a", decimal.Decimal("1.666667"), decimal.Decimal("1.666667"))
    assert expected[2][1] == ("b", decimal.Decimal("-1.666667"), decimal.Decimal("-1.666667"))
    assert expected[2][2] == ("c", None, None)
    assert averages(session, connect_functions, window) == expected


# Decimal types of the operands of the arithmetic compared with Spark: small and wide, with places and without.
ARITHMETIC_TYPES = [(10, 2), (38, 4), (20, 0), (38, 20), (3, 1), (38, 10)]
# Values whose quotients round half up at Spark's scale (1 / 64 = 0.015625), negative ones, and values that fill a
# decimal(3, 1) (the cast rounds 1.25 half up).
ARITHMETIC_ROWS = [("2", "3"), ("-2", "3"), ("1", "64"), ("-1", "64"), ("7", "-9"), ("1.25", "4"), ("99.9", "-0.7")]


@pytest.mark.spark
@pytest.mark.parametrize("operator", ["+", "-", "*", "/"])
def test_sail_decimal_arithmetic_is_sparks(
    spark: Any, engines: dict[str, tuple[Any, Any, Any]], operator: str, tmp_path: Path
) -> None:
    """Every pair of ARITHMETIC_TYPES: Spark's type (its DecimalPrecision rule: a decimal(38, 4) over a decimal(38,
    4) is a decimal(38, 6); Sail 0.7.2 alone gives 4 places more than the dividend, truncated, and keeps every place
    of a product up to 38 digits) and its value, rounded half up."""
    import operator as python

    from pyspark.sql import functions as F

    session, connect_functions, _ = engines["sail"]
    apply = {"+": python.add, "-": python.sub, "*": python.mul, "/": python.truediv}[operator]

    def computed(on: Any, functions: Any) -> Any:
        frame = on.createDataFrame(ARITHMETIC_ROWS, "a STRING, b STRING")
        return frame.select(
            *[
                apply(functions.col("a").cast(f"decimal{left}"), functions.col("b").cast(f"decimal{right}")).alias(
                    f"{left}{operator}{right}"
                )
                for left in ARITHMETIC_TYPES
                for right in ARITHMETIC_TYPES
            ]
        )

    on_spark = computed(spark, F)
    on_sail = computed(session, connect_functions)
    assert written_schema(on_sail, tmp_path / "sail") == written_schema(on_spark, tmp_path / "spark")
    assert rows(spark.read.parquet(str(tmp_path / "sail"))) == rows(on_spark)


@pytest.mark.spark
def test_sail_decimal_arithmetic_with_integers_is_sparks(
    spark: Any, engines: dict[str, tuple[Any, Any, Any]], tmp_path: Path
) -> None:
    """An integer column beside a decimal counts as its decimal (INT: decimal(10, 0)), an integer literal as just its
    digits (100: decimal(3, 0)); the ratio of sums of TPC-H q14 is a decimal(38, 6) (Sail 0.7.2 alone: (38, 8))."""
    from pyspark.sql import functions as F

    session, connect_functions, _ = engines["sail"]

    def computed(on: Any, functions: Any) -> Any:
        frame = amounts(on, functions)
        price, discount, number = functions.col("price"), functions.col("discount"), functions.col("id")
        revenue = price * (1 - discount)
        return frame.select(
            (price / number).alias("per_id"),
            (price * 100).alias("hundredfold"),
            (100 * price / 3).alias("third"),
            (number / price).alias("inverse"),
            (price - number * 2).alias("less"),
            (price / functions.lit(3).cast("bigint")).alias("per_long"),
        ).crossJoin(frame.agg((100 * functions.sum(revenue) / functions.sum(price)).alias("ratio")))

    on_spark = computed(spark, F)
    on_sail = computed(session, connect_functions)
    assert written_schema(on_sail, tmp_path / "sail") == written_schema(on_spark, tmp_path / "spark")
    assert ("ratio", "decimal128(38, 6)") in written_schema(on_spark, tmp_path / "spark-again")
    assert rows(spark.read.parquet(str(tmp_path / "sail"))) == rows(on_spark)


@pytest.mark.spark
def test_sail_decimal_division_keeps_sparks_scale(spark: Any, engines: dict[str, tuple[Any, Any, Any]]) -> None:
    """A decimal division whose exact type would exceed 38 digits keeps 6 places (precision loss allowed), rounded
    half up (TPC-H q14)."""
    from pyspark.sql import functions as F

    session, connect_functions, _ = engines["sail"]

    def divided(on: Any, functions: Any) -> Any:
        frame = on.createDataFrame([("100.00", "3.00"), ("200.00", "3.00")], "a STRING, b STRING").select(
            functions.col("a").cast("DECIMAL(38, 4)").alias("a"), functions.col("b").cast("DECIMAL(38, 4)").alias("b")
        )
        found = frame.select((functions.col("a") / functions.col("b")).alias("q"))
        return [row[0] for row in found.collect()], found.schema["q"].dataType.simpleString()

    expected = ([decimal.Decimal("33.333333"), decimal.Decimal("66.666667")], "decimal(38,6)")
    assert divided(spark, F) == expected
    assert divided(session, connect_functions) == expected


@pytest.mark.spark
def test_sail_round_of_a_double_is_sparks(spark: Any, engines: dict[str, tuple[Any, Any, Any]]) -> None:
    """round of a DOUBLE: Spark rounds its shortest decimal form half up (round(150.545, 2) = 150.55), not the
    binary value (150.54499999999998...: Sail 0.7.2's own 150.54), in a select, a filter, an orderBy, a groupBy key
    and over an aggregate and a window; its column keeps Spark's name. The oracle's seed 38."""
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as F

    session, connect_functions, window = engines["sail"]
    values = [("a", 150.545), ("a", 2.675), ("b", 0.5), ("b", 229.89499999999998)]

    def rounded(on: Any, functions: Any, over: Any) -> tuple[Any, ...]:
        frame = on.createDataFrame(values, "g STRING, x DOUBLE")
        selected = frame.select("g", functions.round("x", 2))
        filtered = frame.where(functions.round("x", 2) == 150.55).select("x")
        ordered = frame.orderBy(functions.round("x", 2).desc()).select("x")
        keyed = frame.groupBy(functions.round(functions.col("x") * 10, -1)).agg(functions.count("*").alias("n"))
        summed = frame.groupBy("g").agg(functions.round(functions.sum("x"), 2).alias("total"))
        windowed = frame.select(functions.round(functions.max("x").over(over.partitionBy("g")), 2).alias("top"))
        return (
            sorted(tuple(row) for row in selected.collect()),
            columns(selected),
            [row[0] for row in filtered.collect()],
            [row[0] for row in ordered.collect()],
            sorted(tuple(row) for row in keyed.collect()),
            columns(keyed),
            sorted(tuple(row) for row in summed.collect()),
            sorted(row[0] for row in windowed.collect()),
        )

    expected = rounded(spark, F, SparkWindow)
    assert expected[0] == [("a", 2.68), ("a", 150.55), ("b", 0.5), ("b", 229.89)]
    assert expected[2] == [150.545]
    assert rounded(session, connect_functions, window) == expected


@pytest.mark.spark
def test_sail_round_of_a_literal_is_sparks(spark: Any, engines: dict[str, tuple[Any, Any, Any]]) -> None:
    """round of a literal DOUBLE, whose CASE the server folds by evaluating every branch: PySpark's own example
    ``round(lit(2.5))`` failed with "Cannot cast string '2.5' to value of Int32 type" (make conformance)."""
    from pyspark.sql import functions as F

    session, connect_functions, _ = engines["sail"]

    def rounded(on: Any, functions: Any) -> list[tuple[Any, ...]]:
        calls = [
            call
            for value in (2.5, 150.545, 1e20, 1e-9, -0.0, float("inf"))
            for call in (
                functions.round(functions.lit(value)),
                functions.round(functions.lit(value), 2),
                functions.bround(functions.lit(value), 2),
            )
        ]
        return [tuple(row) for row in on.range(1).select(*calls).collect()]

    assert rounded(session, connect_functions) == rounded(spark, F)


@pytest.mark.spark
def test_known_difference_sail_round_in_sql_text(spark: Any, engines: dict[str, tuple[Any, Any, Any]]) -> None:
    """SQL text (F.expr, selectExpr, a where string, spark.sql) reaches Sail as text: sparkflow does not rewrite it,
    so a DOUBLE rounds as Sail rounds it (docs/engines.md). The same call through pyspark.sql.functions is Spark's."""
    from pyspark.sql import functions as F

    session, connect_functions, _ = engines["sail"]

    def rounded(on: Any, functions: Any) -> list[tuple[Any, ...]]:
        frame = on.createDataFrame([(150.545,)], "x DOUBLE")
        return [tuple(row) for row in frame.select(functions.expr("round(x, 2)"), functions.round("x", 2)).collect()]

    assert rounded(spark, F) == [(150.55, 150.55)]
    assert rounded(session, connect_functions) == [(150.54, 150.55)]


@pytest.mark.spark
def test_known_difference_sail_to_date_of_a_timestamp_string(
    spark: Any, engines: dict[str, tuple[Any, Any, Any]]
) -> None:
    """to_date of an ISO date-time string: Spark takes its date, Sail 0.7.2 refuses the string."""
    from pyspark.sql import functions as F

    session, connect_functions, _ = engines["sail"]
    text = "2026-03-01T00:10:00"
    found = spark.createDataFrame([(text,)], "ts STRING").select(F.to_date("ts")).first()[0]
    assert found == datetime.date(2026, 3, 1)
    with pytest.raises(Exception, match="CAST_INVALID_INPUT"):
        session.createDataFrame([(text,)], "ts STRING").select(connect_functions.to_date("ts")).collect()
