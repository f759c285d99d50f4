"""Implicit feedback for ALS: confidence per customer x sku, the train/validation/test windows, dense integer ids."""

from __future__ import annotations

from collections.abc import Sequence
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


def implicit_confidences(
    interactions: DataFrame,
    references: Sequence[datetime],
    event_weights: dict[str, float],
    half_life_days: float,
    min_interactions: int = 1,
) -> DataFrame:
    """`implicit_confidence` at several reference times, from one aggregation and one customer window.

    Out: customer_key, sku and, for the i-th reference, confidence_i (null: no counted event before it),
    events_i and trainable_i (the customer has at least `min_interactions` events before it, as
    `active_customers` keeps). A training run builds three training sets from the same events; one pass
    shuffles them once instead of three times. Read one reference's rows with `at_reference`.
    """
    weights = F.create_map(
        *[F.lit(x) for pair in sorted(event_weights.items()) for x in (pair[0], float(pair[1]))]
    )
    quantity = F.coalesce(F.col("quantity"), F.lit(1))
    counted = (
        interactions.where(
            F.col("customer_key").isNotNull()
            & F.col("sku").isNotNull()
            & (F.col("event_ts") < F.lit(max(references)))
            & (quantity > 0)
        )
        .withColumn("_weight", weights[F.col("event_type")] * (F.lit(1.0) + F.log(quantity.cast("double"))))
        .where(F.col("_weight") > 0)
    )
    sums = []
    for i, reference in enumerate(references):
        before = F.col("event_ts") < F.lit(reference)
        age_days = (F.lit(reference).cast("long") - F.col("event_ts").cast("long")) / SECONDS_PER_DAY
        decayed = F.col("_weight") * F.pow(F.lit(0.5), age_days / F.lit(half_life_days))
        sums += [
            F.sum(F.when(before, decayed)).alias(f"confidence_{i}"),
            F.count(F.when(before, F.lit(1))).alias(f"events_{i}"),
        ]
    customer = Window.partitionBy("customer_key")
    return (
        counted.groupBy("customer_key", "sku")
        .agg(*sums)
        .select(
            "customer_key",
            "sku",
            *[
                column
                for i in range(len(references))
                for column in (
                    f"confidence_{i}",
                    f"events_{i}",
                    (F.sum(f"events_{i}").over(customer) >= min_interactions).alias(f"trainable_{i}"),
                )
            ],
        )
    )


def at_reference(confidences: DataFrame, index: int, trainable_only: bool = False) -> DataFrame:
    """The rows of the `index`-th reference of `implicit_confidences`: customer_key, sku, confidence, events.

    With `trainable_only`, only customers with enough events before it (the ALS training rows).
    """
    rows = F.col(f"events_{index}") > 0
    if trainable_only:
        rows = rows & F.col(f"trainable_{index}")
    return confidences.where(rows).select(
        "customer_key",
        "sku",
        F.col(f"confidence_{index}").alias("confidence"),
        F.col(f"events_{index}").alias("events"),
    )


def implicit_confidence(
    interactions: DataFrame,
    reference: datetime,
    event_weights: dict[str, float],
    half_life_days: float,
) -> DataFrame:
    """Confidence per customer x sku: sum of event weight x (1 + ln quantity) x 0.5^(age days / half life).

    Only events before `reference` count; event types without a weight and returns (quantity <= 0)
    add nothing. Out: customer_key, sku, confidence, events.
    """
    return at_reference(implicit_confidences(interactions, [reference], event_weights, half_life_days), 0)


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
