"""A Parquet source that asks to skip bad records: Parquet is readable or corrupt as a whole file."""

import sparkflow as sf

table = sf.source("table", "data/table.parquet", on_bad_record="skip")
