"""sparkflow: run composed PySpark stages serverless, on AWS Step Functions or GCP Workflows.

import sparkflow as sf

books = sf.source("books", "s3://my-bucket/books/", format="text")

@sf.stage(partition="rows")
def words(lines: DataFrame) -> DataFrame: ...
"""

from sparkflow.dsl import (
    OnNewObjects,
    Param,
    Pipeline,
    Sink,
    Source,
    Stage,
    StageOptions,
    on_new_objects,
    param,
    pipeline,
    sink,
    source,
    stage,
)
from sparkflow.errors import SparkflowError
from sparkflow.results import read_output

__all__ = [
    "OnNewObjects",
    "Param",
    "Pipeline",
    "Sink",
    "Source",
    "SparkflowError",
    "Stage",
    "StageOptions",
    "on_new_objects",
    "param",
    "pipeline",
    "read_output",
    "sink",
    "source",
    "stage",
]
