"""The whole gold stage (every snapshot with its gate and Delta write) on synthetic silver at a chosen scale.

Silver comes from the same Parquet order data as the RFM part (synthetic_orders), written as the Delta tables
silver.orders, silver.order_lines and silver.customers of a bench lake; gold then runs exactly as
`o2o run gold` does. Gate time is the wall-clock time inside `quality.gate` (the gates validate frames that
are already computed, so the share is the cost of the quality checks themselves).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from measure import Stopwatch
from o2o import lake, quality
from o2o.config import Config
from o2o.contracts import SILVER
from o2o.gold import stage as gold_stage
from synthetic_orders import OrderData, conform

MARKER = "_silver_written"


def customers_of(orders: DataFrame) -> DataFrame:
    """silver.customers for the customer keys that have orders: first channel and time, channels seen."""
    first = F.min_by(F.col("channel"), F.col("order_ts"))
    return (
        orders.where(F.col("customer_key").isNotNull())
        .groupBy("customer_key")
        .agg(
            first.alias("first_channel"),
            F.min("order_ts").alias("first_seen_ts"),
            F.array_sort(F.collect_set("channel")).alias("channels_seen"),
        )
        .select(
            "customer_key",
            F.concat(F.lit("M"), F.col("customer_key")).alias("member_id"),
            F.lit(None).cast("string").alias("phone_hash"),
            F.lit(None).cast("string").alias("email_hash"),
            "first_channel",
            "first_seen_ts",
            "channels_seen",
            F.lit(True).alias("is_member"),
            F.lit(True).alias("is_identified"),
            F.lit("Shanghai").alias("city"),
            F.lit("bench").alias("updated_run_id"),
        )
    )


def bench_lake(spark: SparkSession, cfg: Config, data: OrderData, root: Path) -> Config:
    """A lake whose silver holds the scale's orders, lines and customers (written once, reused); gold and ops empty."""
    cfg = cfg.replace(
        lake={"root": str(root), "landing": str(root / "landing"), "reports": "", "checkpoints": ""}
    )
    if not (root / MARKER).exists():
        shutil.rmtree(root, ignore_errors=True)
        # The Parquet is already in the silver contracts' shape (synthetic_orders conforms it).
        orders = spark.read.parquet(data.orders_path)
        lake.overwrite(orders, cfg, "silver.orders")
        lake.overwrite(spark.read.parquet(data.order_lines_path), cfg, "silver.order_lines")
        lake.overwrite(conform(customers_of(orders), SILVER["customers"]), cfg, "silver.customers")
        (root / MARKER).touch()
    for layer in ("gold", "ops", "reports"):  # every measured run is the first gold run of its as-of
        shutil.rmtree(root / layer, ignore_errors=True)
    return cfg


@contextmanager
def timed_gates() -> Iterator[list[tuple[str, float]]]:
    """Record (table, seconds) of every quality.gate call made inside the block."""
    calls: list[tuple[str, float]] = []
    original = quality.gate

    def gate(spark, cfg, table, df, **kwargs):
        started = time.perf_counter()
        try:
            return original(spark, cfg, table, df, **kwargs)
        finally:
            calls.append((table, time.perf_counter() - started))

    quality.gate = gate
    try:
        yield calls
    finally:
        quality.gate = original


def bench_scale(spark: SparkSession, cfg: Config, data: OrderData, root: Path) -> dict:
    """One gold stage run on the scale's silver: stage seconds, gate seconds and share, rows per table."""
    with Stopwatch() as load:
        cfg = bench_lake(spark, cfg, data, root)
    with timed_gates() as gates, Stopwatch() as watch:
        result = gold_stage.run(spark, cfg, date.fromisoformat(data.as_of), "bench-gold")
    gate_seconds = sum(seconds for _, seconds in gates)
    return {
        "order_lines": data.lines,
        "orders": data.orders,
        "silver_load_seconds": round(load.seconds, 3),
        "stage_seconds": round(watch.seconds, 3),
        "gate_seconds": round(gate_seconds, 3),
        "gate_share": round(gate_seconds / watch.seconds, 4),
        "gates": {table: round(seconds, 3) for table, seconds in gates},
        "rows_out": result.details["rows"],
        "order_lines_per_second": round(data.lines / watch.seconds),
        "data_docs": cfg.quality.data_docs,
    }
