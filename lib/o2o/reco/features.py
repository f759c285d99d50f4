"""Implicit feedback for ALS: confidence per customer x sku, the train/validation/test windows, dense integer ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class Windows:
    """Time windows of one training run (UTC, start inclusive, end exclusive)."""

    validation_start: datetime  # tuning: train before, validate on [validation_start, test_start)
    test_start: datetime  # evaluation: train before, test on [test_start, end)
    end: datetime  # the day after as_of at 00:00 UTC


def windows(as_of: date, test_days: int, validation_days: int) -> Windows:
    """Test = the last `test_days` days up to and including as_of; validation = the `validation_days` before."""
    end = datetime.combine(as_of + timedelta(days=1), time.min)
    test_start = end - timedelta(days=test_days)
    return Windows(
        validation_start=test_start - timedelta(days=validation_days), test_start=test_start, end=end
    )


def before(interactions: DataFrame, moment: datetime) -> DataFrame:
    """Events strictly before `moment` (naive UTC)."""
    return interactions.where(F.col("event_ts") < F.lit(moment))


def purchases_between(interactions: DataFrame, start: datetime, end: datetime) -> DataFrame:
    """Distinct customer x sku purchased in [start, end): the relevant items of an evaluation window."""
    return (
        interactions.where(
            (F.col("event_type") == "purchase")
            & (F.col("event_ts") >= F.lit(start))
            & (F.col("event_ts") < F.lit(end))
            & F.col("customer_key").isNotNull()
            & (F.coalesce(F.col("quantity"), F.lit(1)) > 0)
        )
        .select("customer_key", "sku")
        .distinct()
    )


def implicit_confidence(
    interactions: DataFrame,
    reference: datetime,
    event_weights: dict[str, float],
    half_life_days: float,
) -> DataFrame:
    """Confidence per customer x sku: sum of event weight x (1 + ln quantity) x 0.5^(age days / half life).

    Only events before `reference` count; event types without a weight and returns (quantity <= 0)
    add nothing. Out: customer_key, sku, confidence, events, last_event_ts.
    """
    weights = F.create_map(
        *[F.lit(x) for pair in sorted(event_weights.items()) for x in (pair[0], float(pair[1]))]
    )
    age_days = (F.lit(reference).cast("long") - F.col("event_ts").cast("long")) / SECONDS_PER_DAY
    quantity = F.coalesce(F.col("quantity"), F.lit(1))
    return (
        interactions.where(
            F.col("customer_key").isNotNull()
            & F.col("sku").isNotNull()
            & (F.col("event_ts") < F.lit(reference))
            & (quantity > 0)
        )
        .withColumn("weight", weights[F.col("event_type")])
        .where(F.col("weight") > 0)
        .withColumn(
            "event_confidence",
            F.col("weight")
            * (F.lit(1.0) + F.log(quantity.cast("double")))
            * F.pow(F.lit(0.5), age_days / F.lit(half_life_days)),
        )
        .groupBy("customer_key", "sku")
        .agg(
            F.sum("event_confidence").alias("confidence"),
            F.count(F.lit(1)).alias("events"),
            F.max("event_ts").alias("last_event_ts"),
        )
    )


def active_customers(confidence: DataFrame, min_interactions: int) -> DataFrame:
    """Confidence rows of customers with at least `min_interactions` events (others are cold start)."""
    # A window, not an aggregate joined back: one shuffle of the confidence rows instead of three.
    customer_events = F.sum("events").over(Window.partitionBy("customer_key"))
    return (
        confidence.withColumn("_customer_events", customer_events)
        .where(F.col("_customer_events") >= min_interactions)
        .drop("_customer_events")
    )


def dense_index(keys: DataFrame, key: str, index: str) -> DataFrame:
    """Distinct non-null `key` values numbered 0..n-1 in sorted order, as int column `index`.

    Distributed: keys are range-partitioned, numbered within their partition, and shifted by the
    row count of all earlier partitions (a table of one row per partition).
    """
    ranged = (
        keys.select(key)
        .where(F.col(key).isNotNull())
        .distinct()
        .repartitionByRange(key)
        .withColumn("_part", F.spark_partition_id())
    )
    numbered = ranged.withColumn("_position", F.row_number().over(Window.partitionBy("_part").orderBy(key)))
    offsets = (
        ranged.groupBy("_part")
        .agg(F.count(F.lit(1)).alias("_rows"))
        .withColumn(
            "_offset",
            F.coalesce(
                F.sum("_rows").over(Window.orderBy("_part").rowsBetween(Window.unboundedPreceding, -1)),
                F.lit(0),
            ),
        )
    )
    return numbered.join(F.broadcast(offsets), "_part").select(
        key, (F.col("_offset") + F.col("_position") - 1).cast("int").alias(index)
    )


def to_ratings(
    confidence: DataFrame, customer_ids: DataFrame, sku_ids: DataFrame, value: str = "confidence"
) -> DataFrame:
    """ALS input: user, item, rating (= `value`) for pairs whose customer and sku both have an id."""
    return (
        confidence.join(customer_ids, "customer_key")
        .join(F.broadcast(sku_ids), "sku")
        .select("user", "item", F.col(value).cast("float").alias("rating"))
    )


def review_ratings(interactions: DataFrame) -> DataFrame:
    """Explicit feedback: the latest review rating (1-5) per customer x sku with its time."""
    latest = Window.partitionBy("customer_key", "sku").orderBy(F.col("event_ts").desc())
    return (
        interactions.where(
            (F.col("event_type") == "review")
            & F.col("rating").between(1, 5)
            & F.col("customer_key").isNotNull()
            & F.col("sku").isNotNull()
        )
        .withColumn("_latest", F.row_number().over(latest))
        .where(F.col("_latest") == 1)
        .select("customer_key", "sku", F.col("rating").cast("double").alias("rating"), "event_ts")
    )
