"""Frames built or held inside the JVM: small local frames (no Python worker) and checkpointed frames.

`spark.createDataFrame(python_rows)` makes a Python RDD: every task of every job that reads it (and of
every later plan that unions or joins it) starts a Python worker, about a second each on 2 cores. Empty
seeds for unions, run-log rows and dq results are built here instead, from one JSON literal that the JVM
parses and casts to the schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from functools import reduce
from typing import Any

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import ArrayType, DataType, MapType, Row, StringType, StructField, StructType


def _schema(schema: StructType | str) -> StructType:
    parsed = StructType.fromDDL(schema) if isinstance(schema, str) else schema
    if not isinstance(parsed, StructType):
        raise TypeError(f"a struct schema is needed, got {schema!r}")
    return parsed


def empty_frame(spark: SparkSession, schema: StructType | str) -> DataFrame:
    """A DataFrame with `schema` and no rows."""
    fields = _schema(schema).fields
    return spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in fields])


def union_all(frames: Iterable[DataFrame]) -> DataFrame:
    """The rows of every frame, matched by column name (at least one frame)."""
    frames = list(frames)
    if not frames:
        raise ValueError("union_all needs at least one frame")
    return reduce(DataFrame.unionByName, frames)


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
    # The rows travel as one JSON text of strings, parsed and cast inside the JVM: one expression however
    # many rows (a literal per value cost a few Py4J calls each, seconds for a gate's results).
    text = json.dumps(
        [
            {f.name: _text(value, f.dataType) for value, f in zip(record, struct.fields, strict=True)}
            for record in records
        ]
    )
    parsed = F.from_json(F.lit(text), ArrayType(_all_strings(struct)))
    return (
        spark.range(1)
        .select(F.inline(parsed))
        .select(*[F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) for f in struct.fields])
    )


def _all_strings(data_type: DataType) -> DataType:
    """`data_type` with every leaf type replaced by string (the shape the JSON text is parsed into)."""
    if isinstance(data_type, StructType):
        return StructType([StructField(f.name, _all_strings(f.dataType)) for f in data_type.fields])
    if isinstance(data_type, ArrayType):
        return ArrayType(_all_strings(data_type.elementType))
    if isinstance(data_type, MapType):
        return MapType(StringType(), _all_strings(data_type.valueType))
    return StringType()


def _text(value: Any, data_type: DataType) -> Any:
    """`value` with every leaf as the string Spark casts to `data_type` exactly (datetimes naive UTC)."""
    if value is None:
        return None
    if isinstance(data_type, ArrayType):
        return [_text(item, data_type.elementType) for item in value]
    if isinstance(data_type, MapType):
        return {
            str(_text(key, data_type.keyType)): _text(item, data_type.valueType)
            for key, item in value.items()
        }
    if isinstance(data_type, StructType):
        values = value.asDict() if isinstance(value, Row) else value
        values = values if isinstance(values, dict) else dict(zip(data_type.names, values, strict=True))
        return {f.name: _text(values.get(f.name), f.dataType) for f in data_type.fields}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def local_checkpoint(
    df: DataFrame, storage_level: StorageLevel = StorageLevel.MEMORY_AND_DISK_DESER
) -> DataFrame:
    """`df` computed now with its lineage cut, stored at `storage_level` (by default in executor memory,
    spilling to disk); free it with `release`.

    For a frame that many queries read (a Great Expectations validation issues dozens, a grid fits ALS
    several times): with `persist` every query still analyses and optimises the whole lineage (a second or
    more each on deep gold plans); the checkpointed frame's plan is one scan of its stored blocks.
    """
    # The default is deserialized, as DataFrame.cache stores: a block spilled to disk is read back as a stream.
    # With PySpark's serialized MEMORY_AND_DISK, reading a spilled block first allocates its whole size on the
    # heap; a bronze run of 1M order lines died there (OutOfMemoryError in BlockManager.maybeCacheDiskBytesInMemory).
    return df.localCheckpoint(eager=True, storageLevel=storage_level)


def release(frame: DataFrame) -> None:
    """Free the blocks of a `local_checkpoint` frame (they belong to the RDD under its one-node plan)."""
    frame._jdf.queryExecution().logical().rdd().unpersist(False)


@contextmanager
def checkpointed(df: DataFrame) -> Iterator[DataFrame]:
    """`df` as a `local_checkpoint`, freed when the block ends; use the frame only inside the block."""
    frame = local_checkpoint(df)
    try:
        yield frame
    finally:
        release(frame)


def is_materialised(df: DataFrame) -> bool:
    """True when `df` is held by Spark already: cached (`cache`/`persist`) or a checkpoint (one LogicalRDD node)."""
    if df.storageLevel != StorageLevel.NONE:
        return True
    return df._jdf.queryExecution().logical().getClass().getSimpleName() == "LogicalRDD"


def broadcast_when_small(df: DataFrame, max_rows: int) -> DataFrame:
    """`df` marked for broadcast joins when it holds at most `max_rows` rows, else `df` unchanged.

    Spark broadcasts a join side by its size estimate (`spark.sql.autoBroadcastJoinThreshold`, 10 MB): a list
    of a few hundred thousand keys passes it, and each join of millions of rows against the list becomes a
    sort-merge join that shuffles the large side. A row bound keeps the list's memory on the driver and on
    every executor predictable. Counts at most `max_rows` + 1 rows: materialise `df` first if it is costly.
    """
    small = df.limit(max_rows + 1).count() <= max_rows
    return F.broadcast(df) if small else df
