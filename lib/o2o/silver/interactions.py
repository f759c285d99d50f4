"""One stream of customer-product interactions: views, carts, favourites (clickstreams), purchases, reviews."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

from o2o.contracts import ONLINE_CHANNELS, SILVER
from o2o.frames import union_all
from o2o.silver.identity import APP_DEVICE, MINI_PROGRAM, ONLINE_ACCOUNT, clean_id, online_namespace
from o2o.silver.orders import attach_customer_key
from o2o.silver.quarantine import (
    bad_timestamp,
    blank,
    late_fates,
    mark_duplicates,
    with_first_failure,
    with_record_ids,
)

APP_EVENTS = ("view", "cart", "favourite")
MINI_PROGRAM_ACTIONS = {"browse": "view", "add_cart": "cart", "collect": "favourite"}
INTERACTION_KEY = ["customer_key", "sku", "event_type", "event_ts"]


@dataclass
class ConformedInteractions:
    """silver.interactions rows, late fates of clickstream/review rows, and purchase lines left out as anonymous."""

    interactions: DataFrame
    fates: dict[str, DataFrame]  # feed -> (_record_id, _reason, _detail, _duplicate)
    anonymous_purchase_lines: DataFrame


EVENT_FEEDS = ("app_clickstream", "mini_program_clickstream", "reviews")


def _mini_program_event(action: object) -> object:
    pairs = [F.lit(x) for kv in sorted(MINI_PROGRAM_ACTIONS.items()) for x in kv]
    return F.try_element_at(F.create_map(*pairs), F.lower(F.trim(action)))


def triage_app_clickstream(bronze: DataFrame, latest_ts: datetime) -> DataFrame:
    """App events with `_event_ts`, `_event_type`, `_namespace`/`_source_id` (account, else device) and fates set."""
    rows = (
        with_record_ids(bronze, "app_clickstream", cluster_by=("event_id",))
        .withColumn("_event_ts", F.try_to_timestamp("event_ts"))
        .withColumn("_event_type", F.lower(F.trim("event_type")))
        .withColumn(
            "_namespace",
            F.when(clean_id(F.col("user_id")).isNotNull(), F.lit(ONLINE_ACCOUNT)).when(
                clean_id(F.col("device_id")).isNotNull(), F.lit(APP_DEVICE)
            ),
        )
        .withColumn("_source_id", F.coalesce(clean_id(F.col("user_id")), clean_id(F.col("device_id"))))
    )
    checks = [
        (F.col("_corrupt_record").isNotNull(), "malformed", "line is not valid JSON for the contract"),
        (blank("event_id"), "missing_key", "event_id is missing"),
        (blank("sku"), "missing_key", "sku is missing"),
        (F.col("_source_id").isNull(), "missing_key", "neither user_id nor device_id"),
        (
            ~F.col("_event_type").isin(*APP_EVENTS) | F.col("_event_type").isNull(),
            "unknown_event",
            F.concat(F.lit("event_type "), F.coalesce(F.col("event_type"), F.lit("null"))),
        ),
        (
            bad_timestamp(F.col("_event_ts"), latest_ts),
            "impossible_timestamp",
            F.concat(F.lit("event_ts "), F.coalesce(F.col("event_ts"), F.lit("null"))),
        ),
    ]
    return mark_duplicates(
        with_first_failure(rows, checks),
        keys=["event_id"],
        newest_first=[],
        other_category="conflicting_duplicate",
    )


def triage_mini_program_clickstream(bronze: DataFrame, latest_ts: datetime) -> DataFrame:
    """Mini-program logs with `_event_ts` (epoch ms -> timestamp), `_event_type` (browse->view, add_cart->cart,
    collect->favourite), `_namespace`/`_source_id` (openid) and fates set."""
    rows = (
        with_record_ids(bronze, "mini_program_clickstream", cluster_by=("log_id",))
        .withColumn("_event_ts", F.timestamp_millis("ts"))
        .withColumn("_event_type", _mini_program_event(F.col("action")))
        .withColumn("_namespace", F.lit(MINI_PROGRAM))
        .withColumn("_source_id", clean_id(F.col("openid")))
    )
    checks = [
        (F.col("_corrupt_record").isNotNull(), "malformed", "line is not valid JSON for the contract"),
        (blank("log_id"), "missing_key", "log_id is missing"),
        (blank("item_id"), "missing_key", "item_id is missing"),
        (F.col("_source_id").isNull(), "missing_key", "openid is missing"),
        (
            F.col("_event_type").isNull(),
            "unknown_event",
            F.concat(F.lit("action "), F.coalesce(F.col("action"), F.lit("null"))),
        ),
        (
            bad_timestamp(F.col("_event_ts"), latest_ts),
            "impossible_timestamp",
            F.concat(F.lit("ts "), F.coalesce(F.col("ts").cast("string"), F.lit("null"))),
        ),
    ]
    return mark_duplicates(
        with_first_failure(rows, checks),
        keys=["log_id"],
        newest_first=[],
        other_category="conflicting_duplicate",
    )


def triage_reviews(bronze: DataFrame, latest_ts: datetime) -> DataFrame:
    """Reviews with `_event_ts` (UTC), `_namespace`/`_source_id` and fates set; an edited review (same id,
    later review_ts) supersedes the older one."""
    channel = F.lower(F.trim("channel"))
    rows = (
        with_record_ids(bronze, "reviews", cluster_by=("review_id",))
        .withColumn("_event_ts", F.try_to_timestamp("review_ts"))
        .withColumn("_channel", channel)
        .withColumn("_namespace", online_namespace(F.col("channel")))
        .withColumn("_source_id", clean_id(F.col("customer_id")))
    )
    checks = [
        (F.col("_corrupt_record").isNotNull(), "malformed", "line is not valid JSON for the contract"),
        (blank("review_id"), "missing_key", "review_id is missing"),
        (blank("sku"), "missing_key", "sku is missing"),
        (F.col("_source_id").isNull(), "missing_key", "customer_id is missing"),
        (
            ~channel.isin(*ONLINE_CHANNELS) | channel.isNull(),
            "unknown_channel",
            F.concat(F.lit("channel "), F.coalesce(F.col("channel"), F.lit("null"))),
        ),
        (
            F.col("rating").isNull() | ~F.col("rating").between(1, 5),
            "bad_rating",
            F.concat(F.lit("rating "), F.coalesce(F.col("rating").cast("string"), F.lit("null"))),
        ),
        (
            bad_timestamp(F.col("_event_ts"), latest_ts),
            "impossible_timestamp",
            F.concat(F.lit("review_ts "), F.coalesce(F.col("review_ts"), F.lit("null"))),
        ),
    ]
    return mark_duplicates(
        with_first_failure(rows, checks),
        keys=["review_id"],
        newest_first=[F.col("_event_ts").desc()],
        other_category="superseded_record",
    )


def _events(
    triaged: DataFrame, customer_keys: DataFrame, sku: str, channel: object, rating: object
) -> DataFrame:
    kept = triaged.where(F.col("_reason").isNull() & F.col("_duplicate").isNull())
    return attach_customer_key(kept, customer_keys, "_namespace", "_source_id").select(
        "_record_id",
        "customer_key",
        F.trim(sku).alias("sku"),
        F.col("_event_type").alias("event_type"),
        F.col("_event_ts").alias("event_ts"),
        channel.alias("channel"),
        F.lit(None).cast("int").alias("quantity"),
        rating.alias("rating"),
    )


def ranked_events(
    app: DataFrame, mini_program: DataFrame, reviews: DataFrame, customer_keys: DataFrame
) -> DataFrame:
    """Kept clickstream and review events with their customer key, `_feed` and `_key_rank`.

    `_key_rank` numbers the events of one interaction key (customer_key, sku, event_type, event_ts) by
    record id, so the same event is first on every run; it is null when no customer key was found.
    """
    sources = {
        "app_clickstream": _events(app, customer_keys, "sku", F.lit("app"), F.lit(None).cast("int")),
        "mini_program_clickstream": _events(
            mini_program, customer_keys, "item_id", F.lit("mini_program"), F.lit(None).cast("int")
        ),
        "reviews": _events(
            reviews.withColumn("_event_type", F.lit("review")),
            customer_keys,
            "sku",
            F.col("_channel"),
            F.col("rating"),
        ),
    }
    events = union_all(frame.withColumn("_feed", F.lit(feed)) for feed, frame in sources.items())
    same_key = Window.partitionBy(*INTERACTION_KEY).orderBy("_record_id")
    return events.withColumn(
        "_key_rank", F.when(F.col("customer_key").isNotNull(), F.row_number().over(same_key))
    )


def interactions_from(
    ranked: DataFrame, orders: DataFrame, order_lines: DataFrame, run_id: str
) -> ConformedInteractions:
    """silver.interactions from `ranked_events` and purchases from conformed order lines, with the late fates.

    Purchases: order lines with quantity > 0, customer and time (order_ts) and channel from the order,
    quantities summed per interaction key; lines of anonymous orders are left out (returned for counting).
    An event whose identity maps to no customer key is quarantined late as `unknown_customer`; a second
    event with the same (customer_key, sku, event_type, event_ts) is the duplicate `same_interaction`.
    """
    fates = {
        feed: late_fates(
            ranked.where((F.col("_feed") == feed) & F.col("customer_key").isNull()),
            reason="unknown_customer",
            detail="no customer identity for this id",
        ).unionByName(
            late_fates(
                ranked.where((F.col("_feed") == feed) & (F.col("_key_rank") > 1)),
                duplicate="same_interaction",
            )
        )
        for feed in EVENT_FEEDS
    }
    clicks_and_reviews = ranked.where(F.col("_key_rank") == 1).select(
        *INTERACTION_KEY, "channel", "quantity", "rating"
    )

    bought = order_lines.where(F.col("quantity") > 0).join(
        orders.select("order_id", "customer_key", F.col("order_ts").alias("event_ts"), "channel"), "order_id"
    )
    purchases = (
        bought.where(F.col("customer_key").isNotNull())
        .groupBy("customer_key", "sku", "event_ts")
        .agg(F.max("channel").alias("channel"), F.sum("quantity").cast("int").alias("quantity"))
        .select(
            "customer_key",
            "sku",
            F.lit("purchase").alias("event_type"),
            "event_ts",
            "channel",
            "quantity",
            F.lit(None).cast("int").alias("rating"),
        )
    )
    interactions = (
        clicks_and_reviews.unionByName(purchases)
        .withColumn("updated_run_id", F.lit(run_id))
        .select(*[F.col(f.name).cast(f.dataType) for f in SILVER["interactions"].fields])
    )
    return ConformedInteractions(
        interactions=interactions,
        fates=fates,
        anonymous_purchase_lines=bought.where(F.col("customer_key").isNull()).select("order_id", "line_no"),
    )


def conform_interactions(
    app: DataFrame,
    mini_program: DataFrame,
    reviews: DataFrame,
    orders: DataFrame,
    order_lines: DataFrame,
    customer_keys: DataFrame,
    run_id: str,
) -> ConformedInteractions:
    """silver.interactions and late fates from triaged clickstreams, reviews and conformed orders (both steps)."""
    return interactions_from(
        ranked_events(app, mini_program, reviews, customer_keys), orders, order_lines, run_id
    )
