"""A differential oracle: sparkflow's answers against one plain PySpark job, on generated pipelines.

A case (:mod:`tests.oracle.generate`) is drawn from a seed: data files (text, CSV, JSON lines, Parquet; with and
without ``schema=``; nulls, skewed and null keys) and a ``pipeline.py`` of one to three correctly declared stages,
written as a data engineer would write it. Each case runs (:mod:`tests.oracle.run`) as

(a) the reference: one plain PySpark job that reads each source with Spark's own reader and calls the stage
    functions (CSV read as RFC 4180, ``escape='"'``: see :func:`tests.runtime.reference.reference_frames`);
(b) ``whole``: ``run_plan`` of the plan without the split and fuse passes (every stage runs whole);
(c) ``split``: ``run_plan`` of the normal plan with a tiny ``chunk_bytes`` (256 to 1024 bytes), so that split
    stages get several chunks and key stages several buckets (checked);

(b) and (c) each on ``engine="spark"`` and ``engine="duckdb"``. Every output the pipeline returns is read from the
run's output folder as any Parquet reader reads it (not through the manifest) and must equal the reference's as a
multiset of rows, compared (:mod:`sparkflow.rowsets`) with a float tolerance of relative 1e-9 and absolute 1e-12
(``math.isclose``), after these normalisations only:

* an integral float equals the int of the same value (two runs may type a whole number differently);
* a Decimal is compared as the float of its value;
* dates and timestamps by value: timezone-aware timestamps as UTC instants, naive ones taken as UTC (the session
  time zone of the runtime and of the reference); a date never equals a timestamp;
* NaN equals NaN; a boolean never equals 0 or 1.

Column names must match too. Nothing is stringified or rounded, so a lost, duplicated or changed row stays visible.

``tests/oracle/test_oracle.py`` runs 16 cases in the test suite; ``python -m tests.oracle`` is the long campaign.
"""
