"""The place pass: every stage runs where it fits — a function, a container or serverless Spark — and a stage
that fits nowhere is a compile error naming its line and what to declare."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.errors import CompileError, DefinitionError
from sparkflow.loading import load_pipeline
from sparkflow.targets.local import LOCAL
from tests.compiler.test_split_pass import write

PLACEMENT = Path(__file__).resolve().parents[1] / "resources" / "placement.py"


def placed(target: object) -> list[tuple[str, str, int]]:
    plan = plan_pipeline(load_pipeline(str(PLACEMENT)), target)  # type: ignore[arg-type]
    return [(task.id, task.placement, task.memory_mb) for task in plan.tasks]


def test_aws_places_each_stage_by_its_declared_input() -> None:
    assert placed("aws") == [
        ("visitors", "container", 16_384),  # 3 GB: over a 2 GB function, the smallest Fargate size holds it
        ("sessions", "container", 61_440),  # 40 GB: the disk of a 60 GB Fargate task (200 GiB) holds it
        ("history", "serverless-spark", 2_048),  # 500 GB: no single machine; EMR Serverless
        ("report", "function", 2_048),  # the aggregates' shrunk outputs (placement.shrink.json): a function
    ]


def test_gcp_places_by_its_own_limits() -> None:
    assert placed("gcp") == [
        ("visitors", "container", 32_768),  # a Cloud Run job's disk is its memory: the largest holds 3 GB
        ("sessions", "serverless-spark", 4_096),  # 40 GB: beyond every Cloud Run job; Dataproc Serverless
        ("history", "serverless-spark", 2_048),
        ("report", "function", 2_048),
    ]


def test_a_local_run_keeps_every_stage_here() -> None:
    assert {placement for _, placement, _ in placed(LOCAL)} == {"function"}


def test_memory_and_timeout_beyond_a_function_go_to_a_container(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "@sf.stage(memory='40GB', timeout='3h')\ndef big(x: int) -> int:\n    return x\n"
        "@sf.stage\ndef seed() -> int:\n    return 1\n"
        "@sf.pipeline\ndef p():\n    return big(seed())\n",
    )
    plan = plan_pipeline(load_pipeline(str(path)), "aws")
    assert plan.task("big").placement == "container"
    assert plan.task("big").memory_mb == 61_440  # 40 GB rounded up to a Fargate size


@pytest.mark.parametrize(
    ("declaration", "pattern"),
    [
        (
            "@sf.stage(memory='200GB', engine='duckdb')",
            r"pipeline_under_test.py:3: stage 'everything' fits neither a function nor a container on aws: "
            r"memory=204,800 MB is over the ECS Fargate memory limit of 122,880 MB.*engine='spark'",
        ),
        (
            "@sf.stage(engine='duckdb')",
            r"pipeline_under_test.py:3: stage 'everything' fits neither a function nor a container on aws: it reads "
            r"500.0 GB declared, more than the largest ECS Fargate container takes \(about 66.7 GB\); declare "
            r"partition='rows' or partition_by='column' so its input is split, or engine='spark' so it can run on "
            r"EMR Serverless",
        ),
        (
            "@sf.stage(placement='container')",
            r"pipeline_under_test.py:3: stage 'everything' cannot run on a container: it reads 500.0 GB declared.*"
            r"placement='serverless-spark'",
        ),
    ],
)
def test_a_stage_that_fits_nowhere_is_refused(tmp_path: Path, declaration: str, pattern: str) -> None:
    path = write(
        tmp_path,
        "huge = sf.source('huge', 's3://bucket/huge/', format='parquet', size='500GB')\n"
        f"{declaration}\ndef everything(huge):\n    return huge\n"
        "@sf.pipeline\ndef p():\n    return everything(huge)\n",
    )
    with pytest.raises(CompileError, match=pattern):
        plan_pipeline(load_pipeline(str(path)), "aws")


def test_a_partitioned_stage_may_be_forced_onto_serverless_spark_whole(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "huge = sf.source('huge', 's3://bucket/huge/', format='parquet', size='500GB')\n"
        "@sf.stage(partition_by='user', placement='serverless-spark', timeout='2h')\n"
        "def totals(huge):\n    return huge\n"
        "@sf.pipeline\ndef p():\n    return totals(huge)\n",
    )
    task = plan_pipeline(load_pipeline(str(path)), "aws").task("totals")
    assert (task.placement, task.fanout) == ("serverless-spark", None)


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ("placement='gpu'", r"placement='gpu' is not known; use one of: auto, function, container, serverless-spark"),
        (
            "placement='serverless-spark', engine='duckdb'",
            r"placement='serverless-spark' runs Spark on a cluster: drop engine='duckdb'",
        ),
    ],
)
def test_bad_placement_options_name_the_line(tmp_path: Path, options: str, pattern: str) -> None:
    path = write(tmp_path, f"@sf.stage({options})\ndef stage(x):\n    return x\n")
    with pytest.raises(DefinitionError, match=r"pipeline_under_test.py:2: " + pattern):
        load_pipeline(str(path))
