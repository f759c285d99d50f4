"""Small frames built in the JVM: exact types, naive-UTC timestamps, and no Python RDD behind them."""

import math
from datetime import date, datetime
from decimal import Decimal

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from o2o.frames import checkpointed, empty_frame, is_materialised, local_frame, union_all

SCHEMA = "run_id string, as_of date, at timestamp, amount decimal(12,2), rows long, tags array<string>"


def test_local_frame_keeps_values_and_types(spark):
    rows = [
        ("r1", date(2026, 3, 29), datetime(2026, 3, 29, 1, 30), Decimal("12.50"), 3, ["a", "b"]),
        {"run_id": "r2", "rows": None, "tags": []},
    ]
    result = local_frame(spark, rows, SCHEMA)
    expected = spark.createDataFrame(
        [
            ("r1", date(2026, 3, 29), datetime(2026, 3, 29, 1, 30), Decimal("12.50"), 3, ["a", "b"]),
            ("r2", None, None, None, None, []),
        ],
        SCHEMA,
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
    # Naive datetimes are UTC wall-clock values, whatever the host's time zone.
    assert result.where("run_id = 'r1'").selectExpr("cast(at as string)").head()[0] == "2026-03-29 01:30:00"


def test_small_frames_need_no_python_worker(spark):
    for frame in (
        local_frame(spark, [("r1", None, None, None, 1, None)], SCHEMA),
        empty_frame(spark, SCHEMA),
    ):
        plan = frame._jdf.queryExecution().executedPlan().toString()
        assert "PythonRDD" not in plan and "ExistingRDD" not in plan, plan


def test_empty_frame_has_the_schema_and_no_rows(spark):
    frame = empty_frame(spark, SCHEMA)
    assert frame.count() == 0
    assert [f.simpleString() for f in frame.schema.fields] == [
        "run_id:string",
        "as_of:date",
        "at:timestamp",
        "amount:decimal(12,2)",
        "rows:bigint",
        "tags:array<string>",
    ]


def test_union_all_matches_columns_by_name_and_keeps_duplicates(spark):
    first = spark.createDataFrame([("a", 1)], "sku string, qty int")
    second = spark.createDataFrame([(2, "b"), (1, "a")], "qty int, sku string")
    third = spark.createDataFrame([("c", 3)], "sku string, qty int")
    expected = spark.createDataFrame([("a", 1), ("b", 2), ("a", 1), ("c", 3)], "sku string, qty int")
    assert_df_equality(union_all([first, second, third]), expected, ignore_row_order=True)
    assert_df_equality(union_all(iter([first])), first)
    with pytest.raises(ValueError, match="at least one frame"):
        union_all([])


def test_a_row_of_the_wrong_width_is_refused(spark):
    with pytest.raises(ValueError, match="has 2 values; the schema has 6"):
        local_frame(spark, [("r1", None)], SCHEMA)


def test_nested_booleans_special_doubles_and_many_rows_keep_their_values(spark):
    schema = "n int, ok boolean, x double, details map<string,bigint>, pair struct<at:timestamp,amount:decimal(5,1)>"
    rows = [
        (i, i % 2 == 0, i / 7, {"k": i}, (datetime(2026, 1, 1, 0, 0, i % 60), Decimal(f"{i}.5")))
        for i in range(500)
    ]
    rows.append((500, None, float("nan"), None, None))
    rows.append((501, False, float("-inf"), {}, {"at": None, "amount": Decimal("-0.1")}))
    result = {row["n"]: row for row in local_frame(spark, rows, schema).collect()}
    assert len(result) == 502
    assert result[14]["ok"] is True and result[13]["ok"] is False and result[13]["x"] == 13 / 7
    assert result[59]["details"] == {"k": 59} and result[59]["pair"]["at"] == datetime(2026, 1, 1, 0, 0, 59)
    assert result[59]["pair"]["amount"] == Decimal("59.5")
    assert math.isnan(result[500]["x"]) and result[500]["ok"] is None and result[500]["pair"] is None
    assert result[501]["x"] == float("-inf") and result[501]["details"] == {}
    assert result[501]["pair"]["at"] is None and result[501]["pair"]["amount"] == Decimal("-0.1")


def test_checkpointed_frame_has_a_one_node_plan_and_is_freed_after_the_block(spark):
    deep = spark.range(100).withColumn("y", F.col("id") * 2).groupBy((F.col("id") % 3).alias("k")).count()
    persisted_before = set(spark.sparkContext._jsc.getPersistentRDDs().keySet())
    with checkpointed(deep) as frame:
        assert sorted(tuple(r) for r in frame.collect()) == [(0, 34), (1, 33), (2, 33)]
        assert frame._jdf.queryExecution().logical().getClass().getSimpleName() == "LogicalRDD"
    assert set(spark.sparkContext._jsc.getPersistentRDDs().keySet()) == persisted_before


def test_only_cached_or_checkpointed_frames_count_as_materialised(spark):
    plain = spark.range(10).withColumn("y", F.col("id") * 2)
    cached = spark.range(10).withColumn("z", F.col("id") + 1).cache()
    try:
        assert not is_materialised(plain)
        assert is_materialised(cached)
        assert not is_materialised(cached.where("id > 3"))  # a query on a cached frame is not held itself
        with checkpointed(plain) as frame:
            assert is_materialised(frame)
    finally:
        cached.unpersist()
    assert not is_materialised(cached)
