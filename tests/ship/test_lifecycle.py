"""The lifecycle rules that expire what failed runs leave under ``<storage root>/_work/``: the S3 rule ``sparkflow
deploy`` puts into the storage bucket's configuration (moto), and GCS's ``lifecycle.json`` ``sparkflow package
--target gcp`` writes. A run that publishes deletes its own working files: tests/runtime/test_no_leftovers.py."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.layout import WORK_EXPIRY_DAYS, work_root
from sparkflow.targets.aws.lifecycle import apply_work_rule, rule_id, work_rule
from sparkflow.targets.aws.locations import storage_location
from sparkflow.targets.gcp.lifecycle import work_lifecycle
from tests.aws_moto import MotoAws
from tests.examples import example

OTHER_RULE = {"ID": "the-users-own", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 90}}


def rules(s3: Any, bucket: str) -> list[dict[str, Any]]:
    try:
        found: list[dict[str, Any]] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except s3.exceptions.ClientError:
        return []
    return found


@pytest.mark.moto
def test_deploy_puts_one_work_rule_beside_the_buckets_own_rules(moto_aws: MotoAws) -> None:
    s3, bucket = moto_aws.client("s3"), f"lifecycle-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [OTHER_RULE]})
    storage = storage_location(f"s3://{bucket}/team/sparkflow/")
    lines: list[str] = []
    apply_work_rule(s3, storage, WORK_EXPIRY_DAYS, lines.append)
    [other, work] = rules(s3, bucket)
    assert other["ID"] == OTHER_RULE["ID"]
    assert work["ID"] == rule_id(storage) == "sparkflow-work:team/sparkflow"
    # The prefix is the layout's work root, in the bucket: every run's working files and nothing else.
    assert f"s3://{bucket}/{work['Filter']['Prefix']}" == work_root(f"s3://{bucket}/team/sparkflow/")
    assert work["Filter"] == {"Prefix": "team/sparkflow/_work/"}
    assert work["Expiration"] == {"Days": 7} and work["Status"] == "Enabled"
    assert work["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert lines == [f"lifecycle rule {rule_id(storage)}: s3://{bucket}/team/sparkflow/_work/ expires after 7 days"]

    apply_work_rule(s3, storage, WORK_EXPIRY_DAYS, lines.append)  # deploying again changes nothing
    assert len(lines) == 1 and len(rules(s3, bucket)) == 2
    apply_work_rule(s3, storage, 3, lines.append)  # replaced, not added
    assert [rule.get("Expiration") for rule in rules(s3, bucket)] == [{"Days": 90}, {"Days": 3}]
    apply_work_rule(s3, storage, 0, lines.append)  # 0: no rule; the bucket's own stays
    assert [rule["ID"] for rule in rules(s3, bucket)] == [OTHER_RULE["ID"]]


@pytest.mark.moto
def test_a_bucket_without_rules_gets_the_work_rule_and_loses_it_with_zero_days(moto_aws: MotoAws) -> None:
    s3, bucket = moto_aws.client("s3"), f"lifecycle-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    storage = storage_location(f"s3://{bucket}/runs")
    apply_work_rule(s3, storage, 2, lambda line: None)
    assert [(rule["Filter"], rule["Expiration"]) for rule in rules(s3, bucket)] == [
        ({"Prefix": "runs/_work/"}, {"Days": 2})
    ]
    apply_work_rule(s3, storage, 0, lambda line: None)
    assert rules(s3, bucket) == []


def test_the_gcs_lifecycle_deletes_the_work_prefix_only() -> None:
    assert work_lifecycle("gs://data-bucket/team/sparkflow/", 7) == {
        "rule": [{"action": {"type": "Delete"}, "condition": {"age": 7, "matchesPrefix": ["team/sparkflow/_work/"]}}]
    }
    assert work_lifecycle("gs://data-bucket", 1)["rule"][0]["condition"]["matchesPrefix"] == ["_work/"]


@pytest.mark.parametrize(("days", "written"), [(None, WORK_EXPIRY_DAYS), ("30", 30), ("0", None)])
def test_package_for_gcp_writes_the_buckets_lifecycle_json(tmp_path: Path, days: str | None, written: int) -> None:
    out = tmp_path / "build"
    options = ["--work-expiry-days", days] if days is not None else []
    result = CliRunner().invoke(
        main,
        [
            "package",
            str(example("wordcount")),
            "--target",
            "gcp",
            "--out",
            str(out),
            "--storage-root",
            "gs://data-bucket/sparkflow/",
            *options,
        ],
    )
    assert result.exit_code == 0, result.output
    path = out / "lifecycle.json"
    if written is None:
        assert not path.exists() and "lifecycle" not in result.output
        return
    document = json.loads(path.read_text())
    [rule] = document["rule"]
    assert rule == {"action": {"type": "Delete"}, "condition": {"age": written, "matchesPrefix": ["sparkflow/_work/"]}}
    assert "gcloud storage buckets update gs://data-bucket --lifecycle-file=lifecycle.json" in result.output


def test_package_for_aws_prints_the_rule_a_stack_deployed_by_hand_lacks(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["package", str(example("wordcount")), "--target", "aws", "--out", str(tmp_path / "build")]
    )
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("lifecycle: ")]
    rule = json.loads(line[line.index("{") :])
    assert rule == work_rule(storage_location("s3://my-bucket/sparkflow/"), WORK_EXPIRY_DAYS)  # the example's storage=
    assert rule["Filter"] == {"Prefix": "sparkflow/_work/"}
