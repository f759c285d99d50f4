"""Deterministic synthetic silver.orders + silver.order_lines at a chosen number of order lines, as Parquet.

Shape: about 20 lines per customer over a year, orders of 1-4 lines (2.5 on average), 4% return
receipts (negative quantity and amount), 2% cancelled online orders, 10% anonymous store sales, and
order times from a week before the look-back window to three days after the as-of date (so the window
edges are exercised). Every value is a hash of the row number and a salt: the same scale gives the same
rows on any machine and partitioning. Built with `spark.range` (the landing generator is far slower).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql.types import StructType

from o2o.contracts import SILVER

GENERATOR_VERSION = 1
LINES_PER_CUSTOMER = 20
LINES_PER_BLOCK = 10
ORDERS_PER_BLOCK = 4
PRODUCTS = 5000
RETURN_SHARE_PERMILLE = 40
CANCELLED_SHARE_PERMILLE = 20
ANONYMOUS_POS_SHARE_PERMILLE = 100
DAYS_BEFORE_WINDOW = 7
DAYS_AFTER_AS_OF = 3
CHANNELS = ("web", "app", "app", "mini_program", "pos", "pos")  # drawn uniformly: app and pos twice as likely
STORES = 8


@dataclass(frozen=True)
class OrderData:
    """Where one scale's Parquet lives and what it holds."""

    lines: int
    orders: int
    customer_ids: int  # customer keys drawn from (not all need to have an order)
    as_of: str
    lookback_days: int
    orders_path: str
    order_lines_path: str
    generator_version: int = GENERATOR_VERSION


def _block_layouts() -> list[tuple[list[int], list[int]]]:
    """Every split of a block of 10 lines into 4 orders of 1-4 lines: (order index, line number) per position."""
    layouts = []
    for sizes in itertools.product(range(1, 5), repeat=ORDERS_PER_BLOCK):
        if sum(sizes) != LINES_PER_BLOCK:
            continue
        order_index = [i for i, size in enumerate(sizes) for _ in range(size)]
        line_no = [n + 1 for size in sizes for n in range(size)]
        layouts.append((order_index, line_no))
    return layouts


def draw(key: Column, salt: str, modulus: int) -> Column:
    """A deterministic pseudo-random integer in [0, modulus) from a key and a salt."""
    return F.pmod(F.xxhash64(key, F.lit(salt)), F.lit(modulus))


def conform(frame: DataFrame, schema: StructType) -> DataFrame:
    """The frame's columns in the contract's order and types."""
    return frame.select(*[F.col(field.name).cast(field.dataType).alias(field.name) for field in schema])


def _epoch(moment: date) -> int:
    return int(datetime.combine(moment, time.min, tzinfo=timezone.utc).timestamp())


def order_lines(spark: SparkSession, lines: int, partitions: int) -> DataFrame:
    """`lines` rows of silver.order_lines; each block of 10 rows is split into 4 orders by a drawn layout."""
    layouts = _block_layouts()
    order_index = F.array(*[F.array(*[F.lit(i) for i in index]) for index, _ in layouts])
    line_numbers = F.array(*[F.array(*[F.lit(n) for n in numbers]) for _, numbers in layouts])
    block = F.floor(F.col("id") / LINES_PER_BLOCK)
    layout = draw(block, "layout", len(layouts)).cast("int")
    position = (F.col("id") % LINES_PER_BLOCK).cast("int")
    order_no = block * ORDERS_PER_BLOCK + order_index[layout][position]
    is_return = draw(order_no, "return", 1000) < RETURN_SHARE_PERMILLE
    sku_no = draw(F.col("id"), "sku", PRODUCTS)
    unit_cents = 199 + draw(sku_no, "price", 30000)
    unit_price = (unit_cents.cast("decimal(14,0)") / F.lit(100)).cast("decimal(12,2)")
    quantity = F.when(is_return, -(1 + draw(F.col("id"), "returned", 2))).otherwise(
        1 + draw(F.col("id"), "quantity", 3)
    )
    return conform(
        spark.range(0, lines, numPartitions=partitions)
        .withColumn("order_no", order_no)
        .select(
            F.format_string("o%010d", F.col("order_no")).alias("order_id"),
            line_numbers[layout][position].alias("line_no"),
            F.format_string("sku-%05d", sku_no).alias("sku"),
            quantity.cast("int").alias("quantity"),
            unit_price.alias("unit_price"),
            (unit_price * quantity).cast("decimal(12,2)").alias("amount"),
            F.when(is_return, F.format_string("o%010d", F.greatest(F.col("order_no") - 997, F.lit(0)))).alias(
                "original_order_id"
            ),
            F.lit("bench").alias("updated_run_id"),
        ),
        SILVER["order_lines"],
    )


def orders(spark: SparkSession, lines: int, as_of: date, lookback_days: int, partitions: int) -> DataFrame:
    """The silver.orders rows the order lines of `order_lines(lines)` belong to."""
    blocks = -(-lines // LINES_PER_BLOCK)
    customers = max(1, lines // LINES_PER_CUSTOMER)
    first_day = as_of - timedelta(days=lookback_days - 1 + DAYS_BEFORE_WINDOW)
    span_seconds = (lookback_days + DAYS_BEFORE_WINDOW + DAYS_AFTER_AS_OF) * 86400
    order_no = F.col("id")
    channel = F.array(*[F.lit(c) for c in CHANNELS])[draw(order_no, "channel", len(CHANNELS)).cast("int")]
    is_pos = channel == "pos"
    is_return = draw(order_no, "return", 1000) < RETURN_SHARE_PERMILLE
    pick_up = ~is_pos & (draw(order_no, "pickup", 100) < 15)
    anonymous = is_pos & (draw(order_no, "anonymous", 1000) < ANONYMOUS_POS_SHARE_PERMILLE)
    cancelled = ~is_pos & ~is_return & (draw(order_no, "cancelled", 1000) < CANCELLED_SHARE_PERMILLE)
    store = F.format_string("S%03d", 1 + draw(order_no, "store", STORES))
    order_ts = F.timestamp_seconds(F.lit(_epoch(first_day)) + draw(order_no, "ts", span_seconds))
    return conform(
        spark.range(0, blocks * ORDERS_PER_BLOCK, numPartitions=partitions).select(
            F.format_string("o%010d", order_no).alias("order_id"),
            channel.alias("channel"),
            F.when(is_pos | pick_up, store).alias("store_id"),
            F.when(~anonymous, F.format_string("c%08d", draw(order_no, "customer", customers))).alias(
                "customer_key"
            ),
            order_ts.alias("order_ts"),
            order_ts.alias("updated_ts"),
            F.when(cancelled, F.lit("cancelled"))
            .when(is_pos, F.lit("completed"))
            .otherwise(F.lit("delivered"))
            .alias("status"),
            F.when(is_pos, F.lit("in_store"))
            .when(pick_up, F.lit("pick_up_in_store"))
            .otherwise(F.lit("delivery"))
            .alias("fulfilment"),
            F.lit("CNY").alias("currency"),
            F.lit(None).alias("item_amount"),
            F.when(is_pos, F.lit(0)).otherwise(F.lit(8)).alias("shipping_fee"),
            F.lit("bench").alias("updated_run_id"),
        ),
        SILVER["orders"],
    )


def _folder(root: Path, lines: int, as_of: date, lookback_days: int) -> Path:
    return root / f"orders_{lines}_v{GENERATOR_VERSION}_{as_of.isoformat()}_{lookback_days}d"


def is_cached(root: Path, lines: int, as_of: date, lookback_days: int) -> bool:
    """Whether an earlier run left this scale's Parquet complete under `root`."""
    return (_folder(root, lines, as_of, lookback_days) / "manifest.json").exists()


def ensure(
    spark: SparkSession, root: Path, lines: int, as_of: date, lookback_days: int
) -> tuple[OrderData, bool]:
    """The scale's Parquet under `root`, written unless an identical earlier run left it. Returns (data, written)."""
    folder = _folder(root, lines, as_of, lookback_days)
    manifest = folder / "manifest.json"
    if manifest.exists():
        return OrderData(**json.loads(manifest.read_text())), False
    partitions = max(2, min(16, lines // 500_000 + 2))
    orders_path, lines_path = folder / "orders", folder / "order_lines"
    order_lines(spark, lines, partitions).write.mode("overwrite").parquet(str(lines_path))
    orders(spark, lines, as_of, lookback_days, partitions).write.mode("overwrite").parquet(str(orders_path))
    data = OrderData(
        lines=spark.read.parquet(str(lines_path)).count(),
        orders=spark.read.parquet(str(orders_path)).count(),
        customer_ids=max(1, lines // LINES_PER_CUSTOMER),
        as_of=as_of.isoformat(),
        lookback_days=lookback_days,
        orders_path=str(orders_path),
        order_lines_path=str(lines_path),
    )
    manifest.write_text(json.dumps(asdict(data), indent=2))
    return data, True
