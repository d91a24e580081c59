"""A triggered pipeline on AWS: the template's EventBridge rule matches S3's ``Object Created`` events of the watched
bucket and prefix and starts the state machine with the run input of the new object, through a role only EventBridge
of this account may assume and that may only start this state machine (cfn-lint clean); deployed in moto, a new
object under the folder starts a run that reads exactly that object.

What moto does itself: CloudFormation creates the rule and its target; S3 (with EventBridge notifications on) sends
``Object Created`` events and moto matches them against the rule's pattern. What ``tests/aws_moto.py`` adds
(``_rules_start_state_machines``, documented there): applying the target's InputTransformer to S3's events (with
moto's own transformer) and starting the Step Functions execution, which moto does not do for a ``states`` target.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import yaml
from cfnlint.api import lint

from sparkflow.errors import PackageError
from sparkflow.targets.aws.template import template_text
from sparkflow.targets.aws.watch import follow
from tests.aws_moto import RULE_DELIVERIES, LambdaDouble, MotoAws
from tests.ship.conftest import compiled
from tests.ship.test_deploy import BUCKET, deployed_with_runtime
from tests.ship.test_package import grants, key


def test_the_rule_starts_the_state_machine_with_the_new_object_through_a_role_that_can_do_nothing_else() -> None:
    item = compiled("arrivals")
    inputs = {"books": "s3://landing/incoming/books/"}
    text = template_text(item.plan, item.definition, inputs=inputs)
    assert [str(match) for match in lint(text)] == []
    document = yaml.safe_load(text)
    rule = document["Resources"]["TriggerRule"]
    assert rule["Type"] == "AWS::Events::Rule" and rule["Properties"]["State"] == "ENABLED"
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["landing"]}, "object": {"key": [{"prefix": "incoming/books/"}]}},
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "StateMachine"} and target["RoleArn"] == {"Fn::GetAtt": ["TriggerRole", "Arn"]}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"}
    # What `sparkflow start --input books=s3://<bucket>/<key>` sends, the placeholders filled by EventBridge.
    assert json.loads(transformer["InputTemplate"]) == {"sources": {"books": "s3://<bucket>/<key>"}}
    role = document["Resources"]["TriggerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert grants(document, "TriggerRole") == {("states:StartExecution", key({"Ref": "StateMachine"}), key(None))}
    assert document["Outputs"]["TriggerRuleArn"]["Value"] == {"Fn::GetAtt": ["TriggerRule", "Arn"]}
    # The functions may read the watched folder, so every object a run is started with.
    assert ":s3:::landing/incoming/books/*" in str(grants(document, "StageRole"))

    declared = yaml.safe_load(template_text(item.plan, item.definition))["Resources"]["TriggerRule"]["Properties"]
    assert declared["EventPattern"]["detail"]["object"] == {"key": [{"prefix": "books/"}]}
    whole = yaml.safe_load(template_text(item.plan, item.definition, inputs={"books": "s3://landing/"}))
    assert whole["Resources"]["TriggerRule"]["Properties"]["EventPattern"]["detail"] == {
        "bucket": {"name": ["landing"]}
    }
    assert (
        "TriggerRule"
        not in yaml.safe_load(template_text(compiled("nightly").plan, compiled("nightly").definition))["Resources"]
    )


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        ({"books": "gs://landing/books/"}, r"is in Cloud Storage, but this target is triggered by S3 events"),
        ({"books": "s3://landing/books/one.txt"}, r"is one object, not a folder"),
        ({"books": "s3://arrivals-out/sparkflow/in/"}, r"the watched folder and the storage root .* overlap"),
    ],
)
def test_a_folder_the_rule_cannot_watch_is_refused_at_the_trigger_line(inputs: dict[str, str], problem: str) -> None:
    item = compiled("arrivals")
    assert item.plan.start_trigger is not None
    where = f"{item.plan.start_trigger.origin}: trigger=sf.on_new_objects('books'): source 'books' at "
    with pytest.raises(PackageError, match=f"^{re.escape(where)}.*{problem}"):
        template_text(item.plan, item.definition, inputs=inputs)


@pytest.mark.moto
@pytest.mark.spark
def test_a_new_object_starts_a_run_that_reads_exactly_that_object(
    moto_aws: MotoAws, lambda_double: LambdaDouble, monkeypatch: Any
) -> None:
    item = compiled("arrivals")
    s3 = moto_aws.client("s3")
    landing = f"landing-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=landing)
    s3.put_object(Bucket=landing, Key="books/old.txt", Body=b"old line\n")  # there before events were switched on
    folder = f"s3://{landing}/books/"
    arn, root = deployed_with_runtime(moto_aws, lambda_double, monkeypatch, item, {"books": folder})
    s3.put_bucket_notification_configuration(Bucket=landing, NotificationConfiguration={"EventBridgeConfiguration": {}})
    RULE_DELIVERIES.clear()

    s3.put_object(Bucket=landing, Key="elsewhere/new.txt", Body=b"not watched\n")
    s3.put_object(Bucket=landing, Key="books/2026-12-03.txt", Body=b"first line\nsecond line\n")

    (delivery,) = [item for item in RULE_DELIVERIES if item.target == arn]
    assert delivery.execution_input == {"sources": {"books": f"s3://{landing}/books/2026-12-03.txt"}}
    final = follow(delivery.execution_arn, clients=moto_aws.client, interval_s=0.2, timeout_s=300)
    assert final.status == "SUCCEEDED", (final.error, final.cause, final.stages)
    (call,) = [call for call in lambda_double.calls if call.node == "shout"]
    assert call.payload["run"]["params"] == delivery.execution_input
    output = final.outputs["shout"]
    assert output == f"{root}{item.plan.pipeline}/{final.run_id}/shout/"
    rows = _parquet_rows(moto_aws, output)
    assert sorted(rows) == ["FIRST LINE", "SECOND LINE"]  # the new object's lines; not old.txt's


def _parquet_rows(aws: MotoAws, folder: str) -> list[str]:
    import io

    import pyarrow.parquet as pq

    s3 = aws.client("s3")
    bucket, prefix = folder.removeprefix("s3://").split("/", 1)
    assert bucket == BUCKET
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    rows: list[str] = []
    for entry in listed:
        if entry["Key"].endswith(".parquet"):
            data = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            rows += [str(value) for value in pq.read_table(io.BytesIO(data)).column("line").to_pylist()]
    return rows
