"""sparkflow: run composed PySpark stages serverless, on AWS Step Functions or GCP Workflows.

import sparkflow as sf

books = sf.source("books", "s3://my-bucket/books/", format="text")

@sf.stage(partition="rows")
def words(lines: DataFrame) -> DataFrame: ...
"""

from sparkflow.dsl import Pipeline, Source, Stage, StageOptions, pipeline, source, stage
from sparkflow.errors import SparkflowError

__all__ = ["Pipeline", "Source", "SparkflowError", "Stage", "StageOptions", "pipeline", "source", "stage"]
