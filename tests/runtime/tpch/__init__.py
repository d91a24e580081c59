"""A small analytical workload of the TPC-H kind: its tables (generate.py) and queries as sparkflow stages
(pipeline.py)."""
