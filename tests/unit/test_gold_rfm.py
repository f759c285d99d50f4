"""RFM values, the score tie rule, the distributed scoring plan, and exact agreement with a pandas reference."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from o2o.gold.rfm import customer_values, order_facts, score_rfm
from realdata import require_data
from rfm_reference import pandas_rfm

ORDERS = (
    "order_id string, channel string, store_id string, customer_key string, order_ts timestamp, "
    "status string, fulfilment string"
)
LINES = "order_id string, line_no int, sku string, quantity int, amount decimal(12,2)"
VALUES = "customer_key string, recency_days int, frequency long, monetary decimal(16,2)"
AS_OF = date(2026, 3, 31)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_rfm_values_net_returns_and_skip_anonymous_cancelled_and_old_orders(spark):
    orders = spark.createDataFrame(
        [
            ("o1", "web", None, "c1", _ts("2026-03-10 10:00:00"), "delivered", "delivery"),
            ("o2", "pos", "S001", "c1", _ts("2026-03-29 10:00:00"), "completed", "in_store"),
            ("r1", "pos", "S001", "c1", _ts("2026-03-30 09:00:00"), "completed", "in_store"),  # return only
            ("o3", "app", "S002", "c2", _ts("2026-03-31 08:00:00"), "completed", "pick_up_in_store"),
            ("o4", "app", None, "c2", _ts("2026-03-20 08:00:00"), "cancelled", "delivery"),
            (
                "o5",
                "mini_program",
                None,
                "c2",
                _ts("2026-02-01 08:00:00"),
                "delivered",
                "delivery",
            ),  # before window
            ("o6", "pos", "S001", None, _ts("2026-03-15 12:00:00"), "completed", "in_store"),  # anonymous
            ("r2", "pos", "S003", "c3", _ts("2026-03-05 12:00:00"), "completed", "in_store"),  # return only
            ("o7", "web", None, "c3", _ts("2026-04-01 00:00:00"), "delivered", "delivery"),  # after as_of
            ("o8", "web", None, "c4", _ts("2026-03-31 23:59:59"), "delivered", "delivery"),  # sale and return
            # An earlier return-only order (before the window) is not c4's first purchase.
            ("r3", "pos", "S001", "c4", _ts("2026-01-15 12:00:00"), "completed", "in_store"),
        ],
        ORDERS,
    )
    lines = spark.createDataFrame(
        [
            ("o1", 1, "a", 2, Decimal("20.00")),
            ("o2", 1, "b", 1, Decimal("30.00")),
            ("r1", 1, "b", -1, Decimal("-5.00")),
            ("o3", 1, "c", 1, Decimal("15.00")),
            ("o4", 1, "c", 4, Decimal("100.00")),
            ("o5", 1, "d", 1, Decimal("40.00")),
            ("o6", 1, "a", 5, Decimal("50.00")),
            ("r2", 1, "a", -1, Decimal("-8.00")),
            ("o7", 1, "a", 1, Decimal("10.00")),
            ("o8", 1, "e", 3, Decimal("15.00")),
            ("o8", 2, "e", -1, Decimal("-5.00")),
            ("r3", 1, "e", -1, Decimal("-5.00")),
        ],
        LINES,
    )

    result = customer_values(order_facts(orders, lines, AS_OF), AS_OF, lookback_days=30)

    expected = spark.createDataFrame(
        [
            # c1: last purchase 03-29 (2 days); o1 + o2; 20 + 30 - 5; online o1, offline o2 and the return.
            (
                "c1",
                2,
                2,
                Decimal("45.00"),
                21,
                1,
                Decimal("20.00"),
                2,
                1,
                Decimal("25.00"),
                ["pos", "web"],
                2,
                "web",
                0.6,
                0,
                19.0,
            ),
            # c2: cancelled o4 ignored, o5 before the window but it is the first purchase ever.
            (
                "c2",
                0,
                1,
                Decimal("15.00"),
                0,
                1,
                Decimal("15.00"),
                None,
                0,
                Decimal("0.00"),
                ["app"],
                1,
                "mini_program",
                0.0,
                1,
                None,
            ),
            (
                "c4",
                0,
                1,
                Decimal("10.00"),
                0,
                1,
                Decimal("10.00"),
                None,
                0,
                Decimal("0.00"),
                ["web"],
                1,
                "web",
                0.0,
                0,
                None,
            ),
        ],
        "customer_key string, recency_days int, frequency long, monetary decimal(16,2), online_recency_days int, "
        "online_frequency long, online_monetary decimal(16,2), offline_recency_days int, offline_frequency long, "
        "offline_monetary decimal(16,2), channels_used array<string>, channel_count int, first_channel string, "
        "offline_spend_share double, pickup_orders long, avg_days_between_orders double",
    )
    assert_df_equality(
        result, expected, ignore_row_order=True, ignore_nullable=True, ignore_column_order=True
    )


def test_scores_ties_share_the_lowest_rank_bin_and_high_means_better_than_mean(spark):
    values = spark.createDataFrame(
        [
            ("a", 0, 1, Decimal("10.00")),
            ("b", 0, 3, Decimal("50.00")),
            ("c", 5, 1, Decimal("20.00")),
            ("d", 10, 2, Decimal("20.00")),
            ("e", 10, 1, Decimal("-5.00")),
        ],
        VALUES,
    )

    result = score_rfm(values).select(
        "customer_key", "r_score", "f_score", "m_score", "fm_score", "rfm_cell", "r_high", "f_high", "m_high"
    )

    # score = 1 + floor(5 x strictly-worse / 5); means: recency 5, frequency 1.6, monetary 19.
    expected = spark.createDataFrame(
        [
            ("a", 4, 1, 2, 2, "412", True, False, False),
            ("b", 4, 5, 5, 5, "455", True, True, True),
            ("c", 3, 1, 3, 2, "313", False, False, True),
            ("d", 1, 4, 3, 4, "143", False, True, True),
            ("e", 1, 1, 1, 1, "111", False, False, False),
        ],
        "customer_key string, r_score int, f_score int, m_score int, fm_score int, rfm_cell string, "
        "r_high boolean, f_high boolean, m_high boolean",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_scoring_plan_at_one_million_customers_has_no_single_partition_exchange(spark):
    ids = spark.range(1_000_000)
    values = ids.select(
        F.col("id").cast("string").alias("customer_key"),
        (F.col("id") % 365).cast("int").alias("recency_days"),
        (F.col("id") % 13 + 1).alias("frequency"),
        ((F.col("id") * 7919 % 10_000_000) / 100).cast("decimal(16,2)").alias("monetary"),
    )

    plan = score_rfm(values)._jdf.queryExecution().executedPlan().toString()

    assert "Window" in plan and "hashpartitioning" in plan
    assert "SinglePartition" not in plan, plan


def test_whole_customer_values_plan_has_no_single_partition_exchange(spark):
    ids = spark.range(1_000_000)
    orders = ids.select(
        F.col("id").cast("string").alias("order_id"),
        F.lit("web").alias("channel"),
        F.lit(None).cast("string").alias("store_id"),
        (F.col("id") % 250_000).cast("string").alias("customer_key"),
        F.timestamp_seconds(F.lit(1_767_225_600) + F.col("id") * 7).alias("order_ts"),
        F.lit("completed").alias("status"),
        F.lit("delivery").alias("fulfilment"),
    )
    lines = ids.select(
        F.col("id").cast("string").alias("order_id"),
        F.lit(1).alias("line_no"),
        F.lit("a").alias("sku"),
        F.lit(1).alias("quantity"),
        F.lit(Decimal("9.99")).cast("decimal(12,2)").alias("amount"),
    )

    rfm = score_rfm(customer_values(order_facts(orders, lines, AS_OF), AS_OF, 365))
    plan = rfm._jdf.queryExecution().executedPlan().toString()

    assert "SinglePartition" not in plan, plan


# ------------------------------------------------------------------ independent pandas reference


def spark_rfm(spark, orders: pd.DataFrame, lines: pd.DataFrame, as_of: date, lookback_days: int, tmp_path):
    """The same inputs through the Spark transforms (via Parquet, so types are explicit)."""
    orders.to_parquet(tmp_path / "orders.parquet", index=False)
    lines.to_parquet(tmp_path / "lines.parquet", index=False)
    orders_df = spark.read.parquet(str(tmp_path / "orders.parquet")).withColumn(
        "order_ts", F.to_timestamp("order_ts")
    )
    lines_df = spark.read.parquet(str(tmp_path / "lines.parquet")).withColumn(
        "amount", (F.col("amount_cents").cast("decimal(14,0)") / 100).cast("decimal(12,2)")
    )
    scored = score_rfm(customer_values(order_facts(orders_df, lines_df, as_of), as_of, lookback_days))
    return scored.select(
        "customer_key",
        "recency_days",
        "frequency",
        (F.col("monetary") * 100).cast("long").alias("monetary_cents"),
        "r_score",
        "f_score",
        "m_score",
    )


def _assert_same(spark, result, reference: pd.DataFrame) -> None:
    expected = spark.createDataFrame(
        reference.astype(
            {"recency_days": "int32", "r_score": "int32", "f_score": "int32", "m_score": "int32"}
        ),
        "customer_key string, recency_days int, frequency long, monetary_cents long, r_score int, f_score int, m_score int",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def random_orders(seed: int, n_orders: int, n_customers: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    order_ids = [f"o{i}" for i in range(n_orders)]
    customers = np.where(
        rng.random(n_orders) < 0.1, None, [f"c{k}" for k in rng.integers(0, n_customers, n_orders)]
    )
    seconds = rng.integers(0, 100 * 86400, n_orders)
    order_ts = (pd.Timestamp("2026-01-01") + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S")
    orders = pd.DataFrame(
        {
            "order_id": order_ids,
            "channel": rng.choice(["web", "app", "mini_program", "pos"], n_orders),
            "store_id": rng.choice(["S001", "S002", None], n_orders),
            "customer_key": customers,
            "order_ts": order_ts,
            "status": rng.choice(["completed", "delivered", "cancelled"], n_orders, p=[0.6, 0.35, 0.05]),
            "fulfilment": rng.choice(["delivery", "pick_up_in_store", "in_store"], n_orders),
        }
    )
    lines_per_order = rng.integers(1, 4, n_orders)
    line_orders = np.repeat(order_ids, lines_per_order)
    quantity = rng.choice([-2, -1, 1, 1, 2, 3, 5], len(line_orders))
    unit_cents = rng.choice([500, 1000, 1999, 2500, 9900], len(line_orders))  # coarse prices: many ties
    lines = pd.DataFrame(
        {
            "order_id": line_orders,
            "line_no": pd.Series(line_orders).groupby(line_orders).cumcount().to_numpy() + 1,
            "sku": rng.choice(["a", "b", "c"], len(line_orders)),
            "quantity": quantity.astype("int32"),
            "amount_cents": (quantity * unit_cents).astype("int64"),
        }
    )
    return orders, lines


def test_spark_scores_equal_the_pandas_reference_on_random_orders(spark, tmp_path):
    orders, lines = random_orders(seed=11, n_orders=3000, n_customers=500)
    as_of = date(2026, 3, 31)

    reference = pandas_rfm(orders, lines, as_of, lookback_days=60)
    result = spark_rfm(spark, orders, lines, as_of, 60, tmp_path)

    assert len(reference) > 300 and reference["frequency"].duplicated().any()
    _assert_same(spark, result, reference)


@pytest.mark.real_data
def test_spark_scores_equal_the_pandas_reference_on_online_retail_ii(spark, data_dir, tmp_path):
    path = require_data(data_dir / "online_retail_ii" / "online_retail_II_2009-2010.parquet")
    raw = pd.read_parquet(path)
    raw["customer_key"] = (
        raw["Customer ID"].astype("string").astype(object).where(raw["Customer ID"].notna(), None)
    )
    orders = (
        raw.groupby("Invoice", sort=False)
        .agg(customer_key=("customer_key", "first"), order_ts=("InvoiceDate", "min"))
        .reset_index()
        .rename(columns={"Invoice": "order_id"})
        .assign(channel="web", store_id=None, status="completed", fulfilment="delivery")
    )
    lines = pd.DataFrame(
        {
            "order_id": raw["Invoice"],
            "line_no": (raw.groupby("Invoice").cumcount() + 1).astype("int32"),
            "sku": raw["StockCode"],
            "quantity": raw["Quantity"].astype("int32"),
            "amount_cents": (raw["Quantity"].astype("float64") * raw["Price"] * 100).round().astype("int64"),
        }
    )
    as_of = date(2010, 12, 10)

    reference = pandas_rfm(orders, lines, as_of, lookback_days=365)
    result = spark_rfm(spark, orders, lines, as_of, 365, tmp_path)

    assert 4000 < len(reference) < 4400
    _assert_same(spark, result, reference)
