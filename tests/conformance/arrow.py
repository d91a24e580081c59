"""A DataFrame's result as Arrow gives it (``DataFrame.toArrow``, which Spark, Spark Connect and sqlframe all have):
its column types, named as Spark names them, and its rows as plain Python values.

Arrow is what the engines' results are made of: what Spark Connect sends, what sqlframe's DuckDB query returns (and
what a sparkflow stage on DuckDB writes, after sparkflow's rewrites; sqlframe's own ``DataFrame.schema`` is its guess
from the query, without them), and what Spark's own Arrow conversion gives. The differential oracle reads results
the same way (tests/oracle/run.py).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

_NAMES: tuple[tuple[Any, str], ...] = (
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_int8, "tinyint"),
    (pa.types.is_int16, "smallint"),
    (pa.types.is_int32, "int"),
    (pa.types.is_int64, "bigint"),
    (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"),
    (pa.types.is_date32, "date"),
    (pa.types.is_null, "void"),
    (pa.types.is_duration, "interval day to second"),
    (pa.types.is_time, "time"),
)


def spark_type(kind: pa.DataType) -> str:
    """The Spark name (``simpleString``) of what Arrow type ``kind`` holds."""
    for test, name in _NAMES:
        if test(kind):
            return name
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "string"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return "binary"
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    if pa.types.is_timestamp(kind):
        return "timestamp" if kind.tz is not None else "timestamp_ntz"
    if pa.types.is_map(kind):
        return f"map<{spark_type(kind.key_type)},{spark_type(kind.item_type)}>"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_list_view(kind):
        return f"array<{spark_type(kind.value_type)}>"
    if pa.types.is_struct(kind):
        fields = (kind.field(index) for index in range(kind.num_fields))
        return "struct<" + ",".join(f"{field.name}:{spark_type(field.type)}" for field in fields) + ">"
    return str(kind)


def types(table: pa.Table) -> tuple[str, ...]:
    """The Spark names of ``table``'s column types."""
    return tuple(spark_type(field.type) for field in table.schema)


def rows(table: pa.Table) -> tuple[tuple[Any, ...], ...]:
    """``table``'s rows as tuples of plain values: a struct a tuple, a map a dict, a list a list."""
    columns = [
        [_plain(value, field.type) for value in column.to_pylist()]
        for field, column in zip(table.schema, table.columns, strict=True)
    ]
    return tuple(zip(*columns, strict=True)) if columns else tuple(() for _ in range(table.num_rows))


def _plain(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_struct(kind):
        return tuple(_plain(value[kind.field(index).name], kind.field(index).type) for index in range(kind.num_fields))
    if pa.types.is_map(kind):
        return {_plain(key, kind.key_type): _plain(item, kind.item_type) for key, item in value}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_list_view(kind):
        return [_plain(item, kind.value_type) for item in value]
    return value
