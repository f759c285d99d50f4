"""Small DataFrames built inside the JVM: no Python worker is started to produce their rows.

`spark.createDataFrame(python_rows)` makes a Python RDD: every task of every job that reads it (and of
every later plan that unions or joins it) starts a Python worker, about a second each on 2 cores. Empty
seeds for unions, run-log rows and dq results are built here instead, as literals that Spark folds into
a local relation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import reduce
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql.types import ArrayType, DataType, MapType, Row, StructType

CHUNK_ROWS = 32


def _schema(schema: StructType | str) -> StructType:
    parsed = StructType.fromDDL(schema) if isinstance(schema, str) else schema
    if not isinstance(parsed, StructType):
        raise TypeError(f"a struct schema is needed, got {schema!r}")
    return parsed


def empty_frame(spark: SparkSession, schema: StructType | str) -> DataFrame:
    """A DataFrame with `schema` and no rows."""
    fields = _schema(schema).fields
    return spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in fields])


def local_frame(
    spark: SparkSession, rows: Iterable[Sequence[Any] | dict[str, Any]], schema: StructType | str
) -> DataFrame:
    """A DataFrame of a few rows (tuples in schema order, or dicts by column name) with exactly `schema`'s types.

    Meant for bounded driver-side data (a run-log row, a gate's results); every value becomes a literal.
    """
    struct = _schema(schema)
    records = [
        [row.get(f.name) for f in struct.fields] if isinstance(row, dict) else list(row)
        for row in (r.asDict() if isinstance(r, Row) else r for r in rows)
    ]
    if not records:
        return empty_frame(spark, struct)
    for record in records:
        if len(record) != len(struct.fields):
            raise ValueError(f"row {record!r} has {len(record)} values; the schema has {len(struct.fields)}")
    literal_rows = [
        F.struct(
            *[
                _literal(value, f.dataType).alias(f.name)
                for value, f in zip(record, struct.fields, strict=True)
            ]
        )
        for record in records
    ]
    # Chunks keep each generated expression small (one huge literal array trips Spark's 64 KB method limit).
    chunks = [
        spark.range(1).select(F.inline(F.array(*literal_rows[start : start + CHUNK_ROWS])))
        for start in range(0, len(literal_rows), CHUNK_ROWS)
    ]
    return reduce(DataFrame.unionAll, chunks)


def _literal(value: Any, data_type: DataType) -> Column:
    """`value` as a literal of `data_type`; datetimes are naive UTC (the session time zone), never the host's."""
    if value is None:
        return F.lit(None).cast(data_type)
    if isinstance(data_type, ArrayType):
        return F.array(*[_literal(item, data_type.elementType) for item in value]).cast(data_type)
    if isinstance(data_type, StructType):
        values = value if isinstance(value, dict) else dict(zip(data_type.names, value, strict=True))
        return F.struct(*[_literal(values.get(f.name), f.dataType).alias(f.name) for f in data_type.fields])
    if isinstance(data_type, MapType):
        pairs = [
            part
            for key, item in value.items()
            for part in (_literal(key, data_type.keyType), _literal(item, data_type.valueType))
        ]
        return F.create_map(*pairs).cast(data_type)
    if isinstance(value, (datetime, date)):
        return F.lit(value.isoformat()).cast(data_type)
    return F.lit(value).cast(data_type)
