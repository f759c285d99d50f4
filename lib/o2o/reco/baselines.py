"""Baseline recommenders ALS must beat: global popularity, popularity within the RFM segment, buy again."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

BASELINES = ("global_popular", "segment_popular", "buy_again")


def popularity(confidence: DataFrame, segments: DataFrame | None = None) -> DataFrame:
    """Product popularity = summed (recency-decayed) confidence, per segment and for everyone.

    Out: segment (null = all customers), sku, score (share of the group's confidence), popularity_rank.
    Ties are broken by sku so the order is stable.
    """
    overall = (
        confidence.groupBy("sku")
        .agg(F.sum("confidence").alias("weight"))
        .withColumn("segment", F.lit(None).cast("string"))
    )
    groups = overall
    if segments is not None:
        per_segment = (
            confidence.join(segments.select("customer_key", "segment"), "customer_key")
            .where(F.col("segment").isNotNull())
            .groupBy("segment", "sku")
            .agg(F.sum("confidence").alias("weight"))
        )
        groups = overall.unionByName(per_segment)
    group = Window.partitionBy("segment")
    return groups.select(
        "segment",
        "sku",
        (F.col("weight") / F.sum("weight").over(group)).alias("score"),
        F.row_number().over(group.orderBy(F.col("weight").desc(), "sku")).alias("popularity_rank"),
    )


def segment_popular(
    customers: DataFrame, popular: DataFrame, segments: DataFrame | None, depth: int
) -> DataFrame:
    """The `depth` most popular products of each customer's segment (all customers' when unsegmented).

    A segment whose customers touched fewer than `depth` products is topped up with everyone's most popular
    ones, ranked after the segment's own: their score is everyone's share scaled below the segment's lowest,
    so ordering by score keeps that order. Out: customer_key, sku, score, rank.
    """
    with_segment = customers.select("customer_key").distinct()
    if segments is not None:
        with_segment = with_segment.join(segments.select("customer_key", "segment"), "customer_key", "left")
    else:
        with_segment = with_segment.withColumn("segment", F.lit(None).cast("string"))
    known_segments = popular.select("segment").where(F.col("segment").isNotNull()).distinct()
    # A segment nobody in the training data belongs to falls back to everyone's popularity.
    resolved = with_segment.join(
        F.broadcast(known_segments.withColumn("_known", F.lit(True))), "segment", "left"
    ).withColumn("segment", F.when(F.col("_known"), F.col("segment")))
    top = popular.where(F.col("popularity_rank") <= depth)
    overall = top.where(F.col("segment").isNull())
    everyone = overall.select(
        "sku", F.col("score").alias("_overall_score"), F.col("popularity_rank").alias("_overall_rank")
    )
    own = top.where(F.col("segment").isNotNull())
    segment_lists = (
        own.groupBy("segment")
        .agg(F.count(F.lit(1)).alias("_listed"), F.min("score").alias("_lowest"))
        .join(everyone, how="cross")
        .join(own.select("segment", "sku"), ["segment", "sku"], "left_anti")
        .select(
            "segment",
            "sku",
            (F.col("_lowest") * F.col("_overall_score")).alias("score"),
            (F.col("_listed") + F.col("_overall_rank")).alias("popularity_rank"),
        )
        .unionByName(own.select("segment", "sku", "score", "popularity_rank"))
        .withColumn(
            "popularity_rank",
            F.row_number().over(Window.partitionBy("segment").orderBy("popularity_rank", "sku")),
        )
        .where(F.col("popularity_rank") <= depth)
        .unionByName(overall.select("segment", "sku", "score", "popularity_rank"))
    )
    return resolved.join(
        F.broadcast(segment_lists), resolved["segment"].eqNullSafe(segment_lists["segment"])
    ).select("customer_key", "sku", "score", F.col("popularity_rank").alias("rank"))


def global_popular(customers: DataFrame, popular: DataFrame, depth: int) -> DataFrame:
    """The `depth` most popular products overall for every customer: customer_key, sku, score, rank."""
    top = popular.where(F.col("segment").isNull() & (F.col("popularity_rank") <= depth))
    return (
        customers.select("customer_key")
        .distinct()
        .crossJoin(F.broadcast(top))
        .select("customer_key", "sku", "score", F.col("popularity_rank").alias("rank"))
    )


def buy_again(customers: DataFrame, interactions: DataFrame, depth: int) -> DataFrame:
    """Each customer's own most-bought products (units, then latest purchase, then sku): customer_key, sku, score, rank.

    A customer who bought fewer than `depth` products gets a shorter list.
    """
    bought = (
        interactions.where(
            (F.col("event_type") == "purchase") & (F.coalesce(F.col("quantity"), F.lit(1)) > 0)
        )
        .join(customers.select("customer_key").distinct(), "customer_key", "left_semi")
        .groupBy("customer_key", "sku")
        .agg(
            F.sum(F.coalesce(F.col("quantity"), F.lit(1))).cast("double").alias("score"),
            F.max("event_ts").alias("last_bought"),
        )
    )
    order = Window.partitionBy("customer_key").orderBy(
        F.col("score").desc(), F.col("last_bought").desc(), "sku"
    )
    return (
        bought.withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= depth)
        .select("customer_key", "sku", "score", "rank")
    )
