"""Small frames built in the JVM: exact types, naive-UTC timestamps, and no Python RDD behind them."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from o2o.frames import empty_frame, local_frame

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


def test_a_row_of_the_wrong_width_is_refused(spark):
    with pytest.raises(ValueError, match="has 2 values; the schema has 6"):
        local_frame(spark, [("r1", None)], SCHEMA)
