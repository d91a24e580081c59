"""Why an entry's values or types differ on an engine, where the first differing result (which docs/engines.md shows
beside it) does not say it: (entry, engine) -> the cause, found by reading every differing result of the entry
(``python -m tests.conformance --entries NAME --keep DIR`` keeps them in ``DIR/outcomes.pickle``).

``VARIES`` names the entries whose differing values change from run to run on that engine (random numbers): the
docs show only the cause for them, so that a run without a change writes the same table.
"""

from __future__ import annotations

_TYPEOF = (
    "only `typeof` differs: DuckDB's own type names (`VARCHAR`, `DATE`, `TIMESTAMP`); the function's values are Spark's"
)
_LOG = "the logarithm of 0 or of a negative number is NULL on Spark, `-inf` or `NaN` on DuckDB"
_TIMESTAMP = (
    "DuckDB's timestamps have no time zone (Spark's `timestamp` is an instant): Spark reads them as `timestamp_ntz`, "
    'as it reads the Parquet a DuckDB stage writes ("What still differs")'
)
_CREATE_INT = (
    "not the function: sqlframe's `createDataFrame` types a column of Python ints that holds a None as `int` "
    "(Spark: `bigint`)"
)
_INT_RESULT = "DuckDB's result type; sparkflow's rewrites cast only the functions they list to Spark's `int`"
_VALUES = "the input: `VALUES` mixing `0.0` with multiples of `PI()` is a decimal on Sail (Spark: double)"
_YEAR_MONTH = "Sail's result is an `interval year to month` where Spark's is an `interval year`"

EXPLAINED: dict[tuple[str, str], str] = {
    # duckdb
    ("DataFrame.approxQuantile", "duckdb"): "sqlframe answers a list of lists for one column (Spark: one list)",
    ("DataFrame.drop", "duckdb"): "dropping an ambiguous column reference: Spark refuses, sqlframe drops one",
    ("DataFrame.dropna", "duckdb"): "`na.drop()` does not drop rows holding `NaN` (Spark treats NaN as missing)",
    ("DataFrame.dtypes", "duckdb"): "sqlframe has no `dtypes`: it reads the name as a column",
    ("DataFrame.head", "duckdb"): "`head(0)` answers one row (sqlframe takes 0 as no argument)",
    ("DataFrame.join", "duckdb"): (
        'an outer join USING a column: sorting by that column sorts by the left side\'s ("What still differs")'
    ),
    ("functions.any_value", "duckdb"): "DuckDB's `any_value` skips NULLs (Spark's takes the first value, NULL too)",
    ("functions.approx_count_distinct", "duckdb"): "another approximation (DuckDB's HyperLogLog, `rsd` ignored)",
    ("functions.array_distinct", "duckdb"): "DuckDB does not keep the elements' first-seen order",
    ("functions.array_intersect", "duckdb"): "DuckDB drops NULL elements",
    ("functions.array_prepend", "duckdb"): "prepending to a NULL array: Spark NULL, DuckDB a one-element array",
    ("functions.array_sort", "duckdb"): "the comparator function is ignored: sorted ascending",
    ("functions.array_union", "duckdb"): "DuckDB drops NULL elements",
    ("functions.arrays_overlap", "duckdb"): "no common element but a NULL: Spark NULL, DuckDB false",
    ("functions.current_catalog", "duckdb"): "DuckDB's catalog is `memory` (Spark: `spark_catalog`)",
    ("functions.current_database", "duckdb"): "DuckDB's database is `memory` (Spark: `default`)",
    ("functions.current_schema", "duckdb"): "DuckDB's database is `memory` (Spark: `default`)",
    ("functions.date_format", "duckdb"): _TYPEOF,
    ("functions.date_from_unix_date", "duckdb"): "a timestamp instead of a date",
    ("functions.day", "duckdb"): _TYPEOF,
    ("functions.dayofmonth", "duckdb"): _TYPEOF,
    ("functions.dayofweek", "duckdb"): _TYPEOF,
    ("functions.dayofyear", "duckdb"): _TYPEOF,
    ("functions.get_json_object", "duckdb"): (
        'the value as JSON text (`"value1"`, quotes kept: DuckDB\'s `json_extract`, not `json_extract_string`); '
        "a `[*]` path gives a list"
    ),
    ("functions.ln", "duckdb"): _LOG,
    ("functions.log", "duckdb"): _LOG,
    ("functions.log10", "duckdb"): _LOG,
    ("functions.log2", "duckdb"): _LOG,
    ("functions.month", "duckdb"): _TYPEOF,
    ("functions.months_between", "duckdb"): (
        "DuckDB counts whole months and days otherwise (Spark: 31-day months and the time of day, rounded to 8 places)"
    ),
    ("functions.quarter", "duckdb"): _TYPEOF,
    ("functions.rand", "duckdb"): "another random number generator: a seed gives other numbers",
    ("functions.sign", "duckdb"): "the sign of NaN: Spark NaN, DuckDB 0",
    ("functions.signum", "duckdb"): "the sign of NaN: Spark NaN, DuckDB 0",
    ("functions.slice", "duckdb"): "a negative start counts from the end on Spark; sqlframe's translation answers []",
    ("functions.split", "duckdb"): "the `limit` argument is ignored",
    ("functions.transform", "duckdb"): "the index a two-argument lambda gets starts at 1 (Spark: 0)",
    ("functions.typeof", "duckdb"): "DuckDB's own type names",
    ("functions.weekofyear", "duckdb"): _TYPEOF,
    ("functions.year", "duckdb"): _TYPEOF,
    ("functions.array_position", "duckdb"): "DuckDB's `int` (Spark: `bigint`)",
    ("functions.arrays_zip", "duckdb"): "the struct's fields are named `$1`, `$2` (Spark: after the arrays)",
    ("functions.bit_count", "duckdb"): _INT_RESULT,
    ("functions.bit_length", "duckdb"): _INT_RESULT,
    ("functions.coalesce", "duckdb"): _CREATE_INT,
    ("functions.contains", "duckdb"): "sqlframe's `createDataFrame` types `bytearray` values as `string`",
    ("functions.cot", "duckdb"): "the input: `VALUES (0.0), (FLOAT('NAN'))` is a `float` on DuckDB (Spark: double)",
    ("functions.count_if", "duckdb"): "a 128-bit integer on DuckDB, read as `decimal(38,0)`",
    ("functions.e", "duckdb"): "sqlframe writes `e()` as a decimal literal",
    ("functions.endswith", "duckdb"): "sqlframe's `createDataFrame` types `bytearray` values as `string`",
    ("functions.extract", "duckdb"): _TIMESTAMP,
    ("functions.factorial", "duckdb"): "DuckDB's factorial is a 128-bit integer, read as `decimal(38,0)`",
    ("functions.grouping", "duckdb"): _INT_RESULT + " (Spark's `grouping` is a `tinyint`)",
    ("functions.ifnull", "duckdb"): _CREATE_INT,
    ("functions.isnull", "duckdb"): _CREATE_INT,
    ("functions.levenshtein", "duckdb"): _INT_RESULT,
    ("functions.ntile", "duckdb"): _INT_RESULT,
    ("functions.nullif", "duckdb"): _CREATE_INT,
    ("functions.nvl", "duckdb"): _CREATE_INT,
    ("functions.nvl2", "duckdb"): _CREATE_INT,
    ("functions.startswith", "duckdb"): "sqlframe's `createDataFrame` types `bytearray` values as `string`",
    ("functions.timestamp_add", "duckdb"): _TIMESTAMP,
    ("functions.timestamp_diff", "duckdb"): _TIMESTAMP,
    ("functions.to_timestamp", "duckdb"): _TIMESTAMP,
    ("functions.zeroifnull", "duckdb"): _CREATE_INT,
    # sail
    ("DataFrame.colRegex", "sail"): "the regular expression is not applied: every column is selected",
    ("DataFrame.crosstab", "sail"): "the counts' columns come in another order",
    ("DataFrame.describe", "sail"): "`stddev` as text, its last digits differ (summed in another order)",
    ("DataFrame.repartitionByRange", "sail"): "rows go to other partitions (`spark_partition_id()`)",
    ("DataFrame.sampleBy", "sail"): "another sampler: a seed samples other rows",
    ("DataFrame.summary", "sail"): "percentiles interpolated (Spark's are approximate and take a value of the column)",
    ("DataFrame.union", "sail"): "a union by position of `int` and `bigint` columns stays `int` (Spark widens)",
    ("DataFrame.unionByName", "sail"): (
        "`allowMissingColumns`: the column made up for the side without it stays `void` (Spark: the other side's type)"
    ),
    ("functions.current_catalog", "sail"): "Sail's catalog is `sail` (Spark: `spark_catalog`)",
    ("functions.date_trunc", "sail"): "a `timestamp_ntz` (Spark: `timestamp`)",
    ("functions.degrees", "sail"): _VALUES,
    ("functions.floor", "sail"): "`floor` to 2 places rounds up (2.13; Spark 2.12)",
    ("functions.from_json", "sail"): "the `allowUnquotedFieldNames` option is ignored",
    ("functions.get_json_object", "sail"): "a `[*]` path gives NULL",
    ("functions.histogram_numeric", "sail"): "another approximation: other bins",
    ("functions.listagg_distinct", "sail"): "the distinct values in sorted order (Spark: first-seen)",
    ("functions.max_by", "sail"): "the count argument (Spark 4.2: the top k) is ignored: one value",
    ("functions.min_by", "sail"): "the count argument (Spark 4.2: the bottom k) is ignored: one value",
    ("functions.regexp_count", "sail"): "Sail's `bigint` (Spark: `int`)",
    ("functions.regr_avgx", "sail"): "`avg` of an all-NULL column is `void` (Spark: `double`)",
    ("functions.regr_avgy", "sail"): "`avg` of an all-NULL column is `void` (Spark: `double`)",
    ("functions.schema_of_csv", "sail"): "every field inferred as `STRING`",
    ("functions.sin", "sail"): _VALUES,
    ("functions.string_agg_distinct", "sail"): "the distinct values in sorted order (Spark: first-seen)",
    ("functions.tan", "sail"): _VALUES,
    ("functions.to_variant_object", "sail"): "the variant's binary form differs (a flag of its metadata header)",
    ("functions.try_add", "sail"): _YEAR_MONTH,
    ("functions.try_parse_url", "sail"): "an invalid URL is parsed (Spark: NULL)",
    ("functions.try_subtract", "sail"): _YEAR_MONTH,
}

VARIES: frozenset[tuple[str, str]] = frozenset({("functions.rand", "duckdb")})
