"""The storage bucket's lifecycle rule that expires what failed runs leave in ``<storage root>/_work/``.

A run that publishes deletes its own working files (the publish task); a run that fails keeps them, so that
``sparkflow start --resume`` can finish it. This rule bounds how long: it deletes every object under the storage
root's work prefix (:func:`sparkflow.layout.work_root`) some days after it was written, and aborts multipart
uploads a killed task left there.

Why ``deploy`` sets it and the template does not: the storage bucket is the user's, not the stack's (the template
takes it as the ``StorageBucket`` parameter), and CloudFormation can configure only buckets it creates. So
``sparkflow deploy`` reads the bucket's lifecycle configuration, puts this one rule in it (named after the storage
root, so deploying again replaces it, and other rules stay as they are) and writes it back.

Why a prefix: S3 lifecycle filters match a key's beginning (``Prefix``) or object tags; the layout keeps every run's
working files under one prefix, so one rule covers them and never touches outputs, logs or quarantined records.
Quarantined records (``<run>/_rejects/``) get no rule: no rule can tell a failed run's from a successful one's, and
a successful run's are the user's data.
"""

from __future__ import annotations

from typing import Any

from sparkflow.layout import WORK
from sparkflow.targets.aws.cloudformation import DeployError, Report
from sparkflow.targets.aws.locations import S3Location

# A rule's ID may be at most 255 characters
# (https://docs.aws.amazon.com/AmazonS3/latest/API/API_LifecycleRule.html).
_ID_PREFIX = "sparkflow-work:"
_ID_LIMIT = 255


def rule_id(storage: S3Location) -> str:
    """The rule's ID: one per storage root, whichever pipelines write under it."""
    return (_ID_PREFIX + storage.key)[:_ID_LIMIT]


def work_rule(storage: S3Location, days: int) -> dict[str, Any]:
    """The rule expiring the working files under ``storage`` (bucket and prefix without a trailing ``/``)."""
    return {
        "ID": rule_id(storage),
        "Filter": {"Prefix": f"{storage.key}/{WORK}/"},
        "Status": "Enabled",
        "Expiration": {"Days": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
    }


def apply_work_rule(s3: Any, storage: S3Location, days: int, report: Report = lambda line: None) -> None:
    """Put the work rule of ``storage`` into its bucket's lifecycle configuration, keeping the bucket's other
    rules; ``days`` 0 removes it instead. A bucket that has the rule already is left alone (and nothing reported).

    Raises:
        DeployError: S3 refused to read or write the configuration (the deployer needs
            ``s3:GetLifecycleConfiguration`` and ``s3:PutLifecycleConfiguration`` on the bucket).
    """
    from botocore.exceptions import ClientError

    where = f"s3://{storage.bucket}/{storage.key}/{WORK}/"
    try:
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=storage.bucket)["Rules"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        kept = [rule for rule in rules if rule.get("ID") != rule_id(storage)]
        if days > 0 and work_rule(storage, days) in rules:
            return
        if days > 0:
            s3.put_bucket_lifecycle_configuration(
                Bucket=storage.bucket, LifecycleConfiguration={"Rules": [*kept, work_rule(storage, days)]}
            )
            report(f"lifecycle rule {rule_id(storage)}: {where} expires after {days} days")
        elif kept != rules:
            if kept:
                s3.put_bucket_lifecycle_configuration(Bucket=storage.bucket, LifecycleConfiguration={"Rules": kept})
            else:
                s3.delete_bucket_lifecycle(Bucket=storage.bucket)
            report(f"lifecycle rule {rule_id(storage)} removed: {where} no longer expires")
    except ClientError as error:
        raise DeployError(
            f"cannot set the lifecycle rule that expires failed runs' working files under {where}: {error}; allow "
            "s3:GetLifecycleConfiguration and s3:PutLifecycleConfiguration on the bucket, or deploy with "
            "--work-expiry-days 0 and expire them yourself"
        ) from error
