"""Deterministic synthetic silver.interactions with taste groups, so a recommender has something to learn.

Each customer belongs to one of `groups` taste groups (customer number mod groups); three events in four
are on the group's own block of items, the rest anywhere in the catalogue, both with a popularity skew
(low item numbers are popular). Event mix: 55% view, 15% cart, 7% favourite, 20% purchase (1-3 units),
3% review (rating 1-5), spread evenly over `days` days ending with the as-of day. Built with `spark.range`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from o2o.contracts import SILVER
from synthetic_orders import draw

RESOLUTION = 1_000_000
OWN_GROUP_PERCENT = 75
EVENT_THRESHOLDS = ((55, "view"), (70, "cart"), (77, "favourite"), (97, "purchase"), (100, "review"))


def _skewed(key: Column, salt: str, count: int) -> Column:
    """An integer in [0, count) drawn with a popularity skew: floor(count x u^2), u uniform."""
    uniform = draw(key, salt, RESOLUTION) / F.lit(float(RESOLUTION))
    return F.floor(F.lit(count) * uniform * uniform).cast("long")


def _event_type(key: Column) -> Column:
    bucket = draw(key, "event", 100)
    expression = F.when(bucket < EVENT_THRESHOLDS[0][0], F.lit(EVENT_THRESHOLDS[0][1]))
    for threshold, name in EVENT_THRESHOLDS[1:]:
        expression = expression.when(bucket < threshold, F.lit(name))
    return expression


def interactions(
    spark: SparkSession,
    events: int,
    customers: int,
    items: int,
    groups: int,
    as_of: date,
    days: int,
) -> DataFrame:
    """`events` rows of silver.interactions (customer_key, sku, event_type, event_ts, channel, quantity, rating)."""
    event = F.col("id")
    customer = draw(event, "customer", customers)
    block = max(1, items // groups)
    own_item = (customer % groups) * block + _skewed(event, "own_item", block)
    any_item = _skewed(event, "any_item", items)
    item = F.when(draw(event, "own_group", 100) < OWN_GROUP_PERCENT, own_item).otherwise(any_item)
    end = datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=timezone.utc)
    first_second = int((end - timedelta(days=days)).timestamp())
    event_type = _event_type(event)
    frame = spark.range(0, events, numPartitions=max(2, events // 1_000_000 + 2)).select(
        F.format_string("c%08d", customer).alias("customer_key"),
        F.format_string("sku-%05d", item).alias("sku"),
        event_type.alias("event_type"),
        F.timestamp_seconds(F.lit(first_second) + draw(event, "ts", days * 86400)).alias("event_ts"),
        F.when(draw(event, "channel", 2) == 0, F.lit("app")).otherwise(F.lit("web")).alias("channel"),
        F.when(event_type == "purchase", 1 + draw(event, "quantity", 3)).alias("quantity"),
        F.when(event_type == "review", 1 + draw(event, "rating", 5)).alias("rating"),
        F.lit("bench").alias("updated_run_id"),
    )
    return frame.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in SILVER["interactions"]])
