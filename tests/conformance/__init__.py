"""PySpark's own documentation examples as a conformance suite: every engine against Spark (issue 27)."""
