"""Recency, frequency and monetary value per customer, and their 1-5 scores computed with a distributed plan.

Tie rule (the one the pandas reference in the tests implements): a customer's score is
``1 + floor(5 x W / N)`` where ``N`` is the number of scored customers and ``W`` the number of
customers whose value is strictly worse (more days since the last purchase for R, fewer orders for
F, less net spend for M). ``W + 1`` is the value's ``rank(method="min")`` in best-last order, so
equal values always get equal scores, and ties sit in the bin of their lowest rank.

Scoring plan: R, F and M are stacked as rows (metric, value) and ranked together. Values are first
counted per metric and distinct value (days, order counts and amounts repeat a lot); the running count
of strictly worse customers is then a window partitioned by metric and a monotone log-magnitude bucket
of the value, plus the total of all lower buckets from a broadcast bucket-by-bucket join of the (at most
a few thousand) bucket totals. No window without ``partitionBy`` and no global aggregate, so the plan
has no ``Exchange SinglePartition`` and every step keeps all cores busy.
"""

from __future__ import annotations

from datetime import date, timedelta

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql.types import DecimalType

from o2o.contracts import BIG_MONEY, ONLINE_CHANNELS

SCORE_BINS = 5
BUCKETS_PER_DOUBLING = 16
OFFLINE_CHANNELS = ("pos",)
PICK_UP = "pick_up_in_store"
CANCELLED = "cancelled"
# One type for -recency days, order counts and money, so the three metrics share one ranking plan (exact).
GOODNESS = DecimalType(22, 2)
SECONDS_PER_DAY = 86400.0


def order_facts(orders: DataFrame, order_lines: DataFrame, as_of: date) -> DataFrame:
    """One row per order placed up to and including `as_of` (UTC day) and not cancelled.

    Out: order_id, customer_key (null for anonymous sales), channel, channel_group (online/offline),
    store_id, fulfilment, order_ts, day, gross_amount (sale lines), returned_amount (return lines, positive),
    net_amount, is_purchase (the order has at least one sale line; return-only orders are not purchases).
    """
    end = as_of + timedelta(days=1)
    amounts = order_lines.groupBy("order_id").agg(
        F.sum(F.when(F.col("quantity") > 0, F.col("amount")).otherwise(F.lit(0)))
        .cast(BIG_MONEY)
        .alias("gross_amount"),
        (-F.sum(F.when(F.col("quantity") < 0, F.col("amount")).otherwise(F.lit(0))))
        .cast(BIG_MONEY)
        .alias("returned_amount"),
        F.sum("amount").cast(BIG_MONEY).alias("net_amount"),
        F.max(F.col("quantity") > 0).alias("is_purchase"),
    )
    return (
        orders.where(
            (F.col("order_ts") < F.lit(end).cast("timestamp"))
            & ~F.coalesce(F.col("status") == CANCELLED, F.lit(False))
        )
        .select("order_id", "customer_key", "channel", "store_id", "fulfilment", "order_ts")
        .join(amounts, "order_id")
        .withColumn("day", F.to_date("order_ts"))
        .withColumn(
            "channel_group",
            F.when(F.col("channel").isin(*ONLINE_CHANNELS), F.lit("online"))
            .when(F.col("channel").isin(*OFFLINE_CHANNELS), F.lit("offline"))
            .otherwise(F.lit("other")),
        )
    )


def _recency(day: Column, as_of: date) -> Column:
    return F.datediff(F.lit(as_of), day).cast("int")


def customer_values(facts: DataFrame, as_of: date, lookback_days: int) -> DataFrame:
    """R, F, M and the omnichannel facts per identified customer with a purchase in the look-back window.

    The window is the `lookback_days` UTC days ending with `as_of`. recency_days = days from the last
    purchase to as_of; frequency = distinct purchase orders; monetary = net line amounts of every
    order in the window (returns subtract; shipping fees are not spend). online_/offline_ repeat them per
    channel group; offline_spend_share = store share of gross spend; avg_days_between_orders = mean gap
    between consecutive purchases in the window, null with one purchase; first_channel = the channel of the
    first purchase ever (earliest order_ts, then order_id) up to as_of.

    One aggregation per customer over the facts (read once): the mean of consecutive gaps is
    (last - first purchase time) / (purchases - 1), since the gaps add up to that span.
    """
    start = as_of - timedelta(days=lookback_days - 1)
    known = facts.where(F.col("customer_key").isNotNull() & (F.col("day") <= F.lit(as_of)))
    in_window = F.col("day") >= F.lit(start)
    purchase = F.col("is_purchase")
    online = F.col("channel_group") == "online"
    offline = F.col("channel_group") == "offline"

    def spend(condition: Column) -> Column:
        return F.coalesce(F.sum(F.when(in_window & condition, F.col("net_amount"))), F.lit(0)).cast(BIG_MONEY)

    def orders(condition: Column) -> Column:
        return F.count(F.when(in_window & condition & purchase, F.col("order_id")))

    def last_day(condition: Column) -> Column:
        return F.max(F.when(in_window & condition & purchase, F.col("day")))

    purchase_seconds = F.when(in_window & purchase, F.unix_timestamp("order_ts"))
    values = (
        known.groupBy("customer_key")
        .agg(
            last_day(F.lit(True)).alias("last_purchase_day"),
            orders(F.lit(True)).alias("frequency"),
            spend(F.lit(True)).alias("monetary"),
            last_day(online).alias("online_last_day"),
            orders(online).alias("online_frequency"),
            spend(online).alias("online_monetary"),
            last_day(offline).alias("offline_last_day"),
            orders(offline).alias("offline_frequency"),
            spend(offline).alias("offline_monetary"),
            F.array_sort(F.collect_set(F.when(in_window & purchase, F.col("channel")))).alias(
                "channels_used"
            ),
            F.sum(F.when(in_window & purchase, F.col("gross_amount"))).alias("gross_spend"),
            F.sum(F.when(in_window & purchase & offline, F.col("gross_amount"))).alias("offline_gross_spend"),
            orders(F.col("fulfilment") == PICK_UP).alias("pickup_orders"),
            (F.max(purchase_seconds) - F.min(purchase_seconds)).alias("purchase_span_seconds"),
            # min_by skips rows whose ordering is null: only purchases, over all history up to as_of.
            F.min_by("channel", F.when(purchase, F.struct("order_ts", "order_id"))).alias("first_channel"),
        )
        .where(F.col("frequency") > 0)
    )
    return values.select(
        "customer_key",
        _recency(F.col("last_purchase_day"), as_of).alias("recency_days"),
        F.col("frequency").cast("long").alias("frequency"),
        "monetary",
        _recency(F.col("online_last_day"), as_of).alias("online_recency_days"),
        F.col("online_frequency").cast("long").alias("online_frequency"),
        "online_monetary",
        _recency(F.col("offline_last_day"), as_of).alias("offline_recency_days"),
        F.col("offline_frequency").cast("long").alias("offline_frequency"),
        "offline_monetary",
        "channels_used",
        F.size("channels_used").cast("int").alias("channel_count"),
        "first_channel",
        F.when(
            F.col("gross_spend") > 0,
            F.round(
                F.coalesce(F.col("offline_gross_spend"), F.lit(0)).cast("double")
                / F.col("gross_spend").cast("double"),
                4,
            ),
        ).alias("offline_spend_share"),
        F.col("pickup_orders").cast("long").alias("pickup_orders"),
        F.when(
            F.col("frequency") > 1,
            F.round(F.col("purchase_span_seconds") / SECONDS_PER_DAY / (F.col("frequency") - 1), 4),
        ).alias("avg_days_between_orders"),
    )


def _monotone_bucket(goodness: Column) -> Column:
    """A non-decreasing function of the value with a few hundred steps per sign (sign x log2 magnitude)."""
    magnitude = F.floor(F.log2(F.abs(goodness).cast("double") + F.lit(1.0)) * F.lit(BUCKETS_PER_DOUBLING))
    return (F.signum(goodness.cast("double")) * magnitude).cast("long")


def value_ranks(goodness: DataFrame) -> DataFrame:
    """Per metric and distinct goodness value: customers strictly worse, customers in all, the sum of goodness.

    In: metric, goodness (one row per customer and metric). Out: metric, goodness, worse, population,
    goodness_sum. Distributed: see the module docstring.
    """
    counts = (
        goodness.groupBy("metric", "goodness")
        .agg(F.count(F.lit(1)).alias("holders"))
        .withColumn("bucket", _monotone_bucket(F.col("goodness")))
    )
    before = (
        Window.partitionBy("metric", "bucket").orderBy("goodness").rowsBetween(Window.unboundedPreceding, -1)
    )
    totals = counts.groupBy("metric", "bucket").agg(
        F.sum("holders").alias("bucket_holders"),
        F.sum(F.col("goodness") * F.col("holders")).alias("bucket_sum"),
    )
    # Bucket totals are bounded (a few hundred buckets per sign and metric), so this self-join is tiny and broadcast.
    offsets = (
        totals.alias("b")
        .join(F.broadcast(totals.alias("o")), F.col("b.metric") == F.col("o.metric"))
        .groupBy(F.col("b.metric").alias("metric"), F.col("b.bucket").alias("bucket"))
        .agg(
            F.sum(
                F.when(F.col("o.bucket") < F.col("b.bucket"), F.col("o.bucket_holders")).otherwise(F.lit(0))
            ).alias("offset"),
            F.sum("o.bucket_holders").alias("population"),
            F.sum("o.bucket_sum").alias("goodness_sum"),
        )
    )
    return (
        counts.withColumn("worse_in_bucket", F.coalesce(F.sum("holders").over(before), F.lit(0)))
        .join(F.broadcast(offsets), ["metric", "bucket"])
        .select(
            "metric",
            "goodness",
            (F.col("offset") + F.col("worse_in_bucket")).alias("worse"),
            "population",
            "goodness_sum",
        )
    )


def score_rfm(values: DataFrame) -> DataFrame:
    """Adds r_score, f_score, m_score (1-5), fm_score, rfm_cell ("545") and r_high/f_high/m_high (vs the mean).

    R is better with fewer days since the last purchase; F and M are better when larger.
    """
    # The three metrics as rows (metric, goodness) of one frame: one ranking plan for all of them instead
    # of one per metric, each of which read the customer values again.
    goodness = {"r": -F.col("recency_days"), "f": F.col("frequency"), "m": F.col("monetary")}
    stacked = values.select(
        "customer_key",
        F.explode(
            F.array(
                *[
                    F.struct(F.lit(metric).alias("metric"), value.cast(GOODNESS).alias("goodness"))
                    for metric, value in goodness.items()
                ]
            )
        ).alias("g"),
    ).select("customer_key", "g.metric", "g.goodness")
    scores = value_ranks(stacked).select(
        "metric",
        "goodness",
        (F.lit(1) + F.expr(f"{SCORE_BINS} * worse div population")).cast("int").alias("score"),
        # Exact: value x N > sum of values  <=>  value > mean, with no rounding of the mean.
        (F.col("goodness") * F.col("population") > F.col("goodness_sum")).alias("high"),
    )
    per_customer = (
        stacked.join(scores, ["metric", "goodness"])
        .groupBy("customer_key")
        .agg(
            *[
                F.max(F.when(F.col("metric") == metric, F.col(column))).alias(f"{metric}_{column}")
                for metric in goodness
                for column in ("score", "high")
            ]
        )
    )
    return (
        values.join(per_customer, "customer_key")
        .withColumn("fm_score", F.expr("(f_score + m_score + 1) div 2").cast("int"))
        .withColumn(
            "rfm_cell",
            F.concat(
                F.col("r_score").cast("string"),
                F.col("f_score").cast("string"),
                F.col("m_score").cast("string"),
            ),
        )
    )
