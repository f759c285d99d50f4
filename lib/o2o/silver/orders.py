"""One order model for every channel: online orders and POS receipts triaged, combined (pick-up in store once), keyed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from o2o.contracts import MONEY, ONLINE_CHANNELS, ORDER_STATUSES, SILVER
from o2o.silver.identity import clean_id, online_namespace, pos_identity
from o2o.silver.pii import phone_hash
from o2o.silver.quarantine import (
    bad_timestamp,
    blank,
    late_fates,
    mark_duplicates,
    with_first_failure,
    with_record_ids,
)

POS_TIME_FORMAT = "yyyy-MM-dd HH:mm:ss"
POS_LINE_KEY = ("store_id", "receipt_no", "line_no")  # one POS sale line
STATUS_SYNONYMS = {
    "new": "created",
    "pending": "created",
    "canceled": "cancelled",
    "ready": "ready_for_pickup",
    "picked_up": "completed",
}
PICKUP_WORDS = ("pickup", "pick_up", "pick_up_in_store", "bopis", "click_and_collect")


@dataclass
class ConformedOrders:
    """Orders and order lines for silver, plus the increment rows whose fate was decided by the existing silver row."""

    orders: DataFrame
    order_lines: DataFrame
    superseded: DataFrame  # late fates: online rows older than what silver already holds


def money(value: Column) -> Column:
    """A double amount as decimal(12,2); null when it does not fit."""
    return value.try_cast(MONEY)


def line_amount(quantity: Column, unit_price: Column) -> Column:
    """quantity x unit price as decimal(12,2)."""
    return (quantity.try_cast("decimal(10,0)") * money(unit_price)).try_cast(MONEY)


def canonical_status(status: Column) -> Column:
    """The order status in ORDER_STATUSES vocabulary (synonyms mapped); null when unknown."""
    cleaned = F.lower(F.trim(status))
    mapped = F.coalesce(
        F.try_element_at(F.create_map(*[F.lit(x) for kv in STATUS_SYNONYMS.items() for x in kv]), cleaned),
        cleaned,
    )
    return F.when(mapped.isin(*ORDER_STATUSES), mapped)


def canonical_fulfilment(fulfilment: Column, pickup_store_id: Column) -> Column:
    """delivery | pick_up_in_store from the online feed's words; null when unknown."""
    cleaned = F.lower(F.trim(fulfilment))
    return (
        F.when(cleaned.isin(*PICKUP_WORDS), F.lit("pick_up_in_store"))
        .when(cleaned == "delivery", F.lit("delivery"))
        .when(cleaned.isNull() & pickup_store_id.isNotNull(), F.lit("pick_up_in_store"))
        .when(cleaned.isNull(), F.lit("delivery"))
    )


def store_timezone(store_id: Column, store_timezones: dict[str, str]) -> Column:
    """IANA time zone of a store (a literal map, no UDF); null for an unknown store."""
    if not store_timezones:
        return F.lit(None).cast("string")
    pairs = [F.lit(x) for kv in sorted(store_timezones.items()) for x in kv]
    return F.try_element_at(F.create_map(*pairs), store_id)


def pos_time_utc(sold_at_local: Column, timezone: Column) -> Column:
    """A store-local 'yyyy-MM-dd HH:mm:ss' as a UTC timestamp (daylight saving handled by the zone rules)."""
    return F.to_utc_timestamp(F.try_to_timestamp(sold_at_local, F.lit(POS_TIME_FORMAT)), timezone)


def attach_customer_key(
    rows: DataFrame, customer_keys: DataFrame, namespace: str, source_id: str
) -> DataFrame:
    """`rows` with `customer_key` joined from the identity lookup on (namespace, source id); null when not found."""
    lookup = customer_keys.select(
        F.col("namespace").alias("_ck_namespace"),
        F.col("source_customer_id").alias("_ck_source_id"),
        "customer_key",
    )
    on = (F.col(namespace) == F.col("_ck_namespace")) & (F.col(source_id) == F.col("_ck_source_id"))
    return rows.join(lookup, on, "left").drop("_ck_namespace", "_ck_source_id")


# ---------------------------------------------------------------- triage: every bronze row gets a fate


def triage_online_orders(bronze: DataFrame, store_ids: list[str], latest_ts: datetime) -> DataFrame:
    """Online order records with parsed columns, `_reason`/`_detail` (quarantine) and `_duplicate` set.

    Parsed: `_order_ts`, `_updated_ts` (UTC), `_status`, `_fulfilment`. Duplicates: the same record again is
    `exact_duplicate`; an older state of the same order (by `updated_ts`, event time) is `superseded_status_update`.
    """
    rows = (
        with_record_ids(bronze, "online_orders", cluster_by=("order_id",))
        .withColumn("_order_ts", F.try_to_timestamp("order_ts"))
        .withColumn("_updated_ts", F.coalesce(F.try_to_timestamp("updated_ts"), F.col("_order_ts")))
        .withColumn("_status", canonical_status(F.col("status")))
        .withColumn("_fulfilment", canonical_fulfilment(F.col("fulfilment"), F.col("pickup_store_id")))
    )
    items = F.coalesce(F.col("items"), F.array())
    checks = [
        (F.col("_corrupt_record").isNotNull(), "malformed", "line is not valid JSON for the contract"),
        (blank("order_id"), "missing_key", "order_id is missing"),
        (blank("customer_id"), "missing_key", "customer_id is missing"),
        (F.exists(items, lambda item: blank(item["sku"])), "missing_key", "an item has no sku"),
        (
            ~F.col("channel").isin(*ONLINE_CHANNELS) | F.col("channel").isNull(),
            "unknown_channel",
            F.concat(F.lit("channel "), F.coalesce(F.col("channel"), F.lit("null"))),
        ),
        (
            bad_timestamp(F.col("_order_ts"), latest_ts),
            "impossible_timestamp",
            F.concat(F.lit("order_ts "), F.coalesce(F.col("order_ts"), F.lit("null"))),
        ),
        (
            F.col("updated_ts").isNotNull() & bad_timestamp(F.try_to_timestamp("updated_ts"), latest_ts),
            "impossible_timestamp",
            F.concat(F.lit("updated_ts "), F.col("updated_ts")),
        ),
        (
            F.exists(items, lambda item: item["unit_price"] < 0) | (F.col("shipping_fee") < 0),
            "negative_price",
            "an item price or the shipping fee is below zero",
        ),
        (
            F.exists(items, lambda item: item["unit_price"].isNull()),
            "negative_price",
            "an item has no price",
        ),
        (F.size(items) == 0, "bad_quantity", "order has no items"),
        (
            F.exists(items, lambda item: item["quantity"].isNull() | (item["quantity"] <= 0)),
            "bad_quantity",
            "an item quantity is missing or not positive",
        ),
        (
            F.col("_status").isNull(),
            "unknown_status",
            F.concat(F.lit("status "), F.coalesce(F.col("status"), F.lit("null"))),
        ),
        (
            F.col("_fulfilment").isNull(),
            "unknown_fulfilment",
            F.concat(F.lit("fulfilment "), F.col("fulfilment")),
        ),
        (
            F.col("pickup_store_id").isNotNull() & ~F.col("pickup_store_id").isin(*store_ids),
            "unknown_store",
            F.concat(F.lit("pickup_store_id "), F.col("pickup_store_id")),
        ),
    ]
    return mark_duplicates(
        with_first_failure(rows, checks),
        keys=["order_id"],
        newest_first=[F.col("_updated_ts").desc()],
        other_category="superseded_status_update",
    )


def triage_pos_sales(bronze: DataFrame, store_timezones: dict[str, str], latest_ts: datetime) -> DataFrame:
    """POS line items with `_sold_at` (UTC), `_reason`/`_detail` and `_duplicate` set.

    The POS copy of a buy-online-pick-up-in-store order (a sale line carrying `online_order_id`) is
    `bopis_pos_copy`: the online order is the order, the copy only says where and when it was picked up.
    """
    rows = with_record_ids(bronze, "pos_sales", cluster_by=POS_LINE_KEY).withColumn(
        "_sold_at", pos_time_utc(F.col("sold_at_local"), store_timezone(F.col("store_id"), store_timezones))
    )
    checks = [
        (F.col("_corrupt_record").isNotNull(), "malformed", "line does not fit the CSV header"),
        (
            blank("store_id") | blank("receipt_no") | F.col("line_no").isNull(),
            "missing_key",
            "store_id, receipt_no or line_no is missing",
        ),
        (blank("sku"), "missing_key", "sku is missing"),
        (
            ~F.col("store_id").isin(*store_timezones),
            "unknown_store",
            F.concat(F.lit("store_id "), F.col("store_id")),
        ),
        (
            bad_timestamp(F.col("_sold_at"), latest_ts),
            "impossible_timestamp",
            F.concat(F.lit("sold_at_local "), F.coalesce(F.col("sold_at_local"), F.lit("null"))),
        ),
        (
            F.col("unit_price").isNull() | (F.col("unit_price") < 0),
            "negative_price",
            "unit_price is missing or below zero",
        ),
        (
            F.col("quantity").isNull() | (F.col("quantity") == 0),
            "bad_quantity",
            "quantity is missing or zero",
        ),
    ]

    triaged = mark_duplicates(
        with_first_failure(rows, checks),
        keys=list(POS_LINE_KEY),
        newest_first=[],
        other_category="conflicting_duplicate",
    )
    is_copy = (
        F.col("_reason").isNull()
        & F.col("_duplicate").isNull()
        & ~blank("online_order_id")
        & (F.col("quantity") > 0)
    )
    return triaged.withColumn("_is_pickup_copy", is_copy).withColumn(
        "_duplicate", F.when(is_copy, F.lit("bopis_pos_copy")).otherwise(F.col("_duplicate"))
    )


# ---------------------------------------------------------------- conform: one order per order id


def _pos_customer(rows: DataFrame, salt: str, country_code: str) -> DataFrame:
    """POS rows with the identity namespace and source id of the buyer: member card, else phone hash, else none."""
    hashed = rows.withColumn("_phone_hash", phone_hash(F.col("phone"), salt, country_code))
    namespace, source_id = pos_identity(F.col("member_card"), F.col("_phone_hash"))
    return hashed.withColumn("_namespace", namespace).withColumn("_source_id", source_id).drop("_phone_hash")


def conform_orders(
    online: DataFrame,
    pos: DataFrame,
    customer_keys: DataFrame,
    existing_orders: DataFrame,
    salt: str,
    country_code: str,
    run_id: str,
) -> ConformedOrders:
    """silver.orders and silver.order_lines from triaged online and POS rows of one increment.

    `existing_orders` are the silver rows of the order ids this increment touches: each order is combined
    with them by event time, so a late (older) online record never overwrites a newer state, and a pick-up
    seen at the POS turns an existing online order into a pick-up-in-store order.
    Online order: newest record wins; a POS pick-up sets fulfilment pick_up_in_store, the store from the
    POS, and status completed at the pick-up time when that is newer. POS receipt: order id store-receipt,
    UTC time, in_store, completed; negative lines are returns linked to store-original receipt.
    """
    order_cols = [f.name for f in SILVER["orders"].fields]
    line_cols = [f.name for f in SILVER["order_lines"].fields]

    # Online records that stay: one per order id (the newest in this increment).
    online_kept = online.where(F.col("_reason").isNull() & F.col("_duplicate").isNull())
    online_candidates = attach_customer_key(
        online_kept.withColumn("_namespace", online_namespace(F.col("channel"))).withColumn(
            "_source_id", clean_id(F.col("customer_id"))
        ),
        customer_keys,
        "_namespace",
        "_source_id",
    ).select(
        "order_id",
        "channel",
        F.when(F.col("_fulfilment") == "pick_up_in_store", F.col("pickup_store_id")).alias("store_id"),
        "customer_key",
        F.col("_order_ts").alias("order_ts"),
        F.col("_updated_ts").alias("updated_ts"),
        F.col("_status").alias("status"),
        F.col("_fulfilment").alias("fulfilment"),
        F.upper(F.trim("currency")).alias("currency"),
        F.aggregate(
            "items",
            F.lit(0).cast("decimal(18,2)"),
            lambda acc, item: (acc + line_amount(item["quantity"], item["unit_price"])).cast("decimal(18,2)"),
        )
        .try_cast(MONEY)
        .alias("item_amount"),
        money(F.coalesce(F.col("shipping_fee"), F.lit(0.0))).alias("shipping_fee"),
        F.lit(1).alias("_from_increment"),
        "_record_id",
        "items",
    )

    # Pick-ups seen at the POS: one per online order id, the latest pick-up time and its store.
    pos_customers = _pos_customer(pos.where(F.col("_is_pickup_copy")), salt, country_code)
    pickups = attach_customer_key(
        pos_customers.groupBy(F.col("online_order_id").alias("order_id")).agg(
            F.max("_sold_at").alias("pickup_ts"),
            F.max_by("store_id", F.struct("_sold_at", "store_id")).alias("pickup_store_id"),
            F.sum(line_amount(F.col("quantity"), F.col("unit_price"))).try_cast(MONEY).alias("pickup_amount"),
            F.max("_namespace").alias("_namespace"),
            F.max_by("_source_id", F.struct("_namespace", "_source_id")).alias("_source_id"),
        ),
        customer_keys,
        "_namespace",
        "_source_id",
    ).withColumnRenamed("customer_key", "pickup_customer_key")

    # Every online-order state known: this increment's newest record, and what silver already holds.
    existing = existing_orders.where(F.col("channel").isin(*ONLINE_CHANNELS)).select(
        *[c for c in order_cols if c != "updated_run_id"],
        F.lit(0).alias("_from_increment"),
        F.lit(None).cast("string").alias("_record_id"),
        F.lit(None).cast(online_candidates.schema["items"].dataType).alias("items"),
    )
    # Ties go to the increment so a rerun after a kill classifies its rows exactly as the first attempt did.
    newest = Window.partitionBy("order_id").orderBy(
        F.col("updated_ts").desc(), F.col("_from_increment").desc()
    )
    base = (
        online_candidates.unionByName(existing)
        .withColumn("_rank", F.row_number().over(newest))
        .withColumn("_increment_lost", (F.col("_rank") > 1) & (F.col("_from_increment") == 1))
    )
    superseded = late_fates(base.where("_increment_lost"), duplicate="superseded_status_update")
    winners = base.where(F.col("_rank") == 1).drop("_rank", "_increment_lost")

    # An earlier pick-up order stub (the POS copy arrived before its online order) also counts as a pick-up.
    stubs = existing_orders.where(
        (F.col("channel") == "pos") & (F.col("fulfilment") == "pick_up_in_store")
    ).select(
        "order_id",
        F.col("updated_ts").alias("stub_ts"),
        F.col("store_id").alias("stub_store_id"),
        F.col("customer_key").alias("stub_customer_key"),
        F.col("item_amount").alias("stub_amount"),
    )
    evidence = pickups.join(stubs, "order_id", "full").select(
        "order_id",
        F.coalesce("pickup_ts", "stub_ts").alias("pickup_ts"),
        F.coalesce("pickup_store_id", "stub_store_id").alias("pickup_store_id"),
        F.coalesce("pickup_customer_key", "stub_customer_key").alias("pickup_customer_key"),
        F.coalesce("pickup_amount", "stub_amount").alias("pickup_amount"),
        F.col("pickup_ts").isNotNull().alias("_pickup_in_increment"),
    )

    combined = winners.join(evidence, "order_id", "full")
    has_base = F.col("channel").isNotNull()
    pickup_newer = F.col("pickup_ts").isNotNull() & (
        F.col("updated_ts").isNull() | (F.col("pickup_ts") > F.col("updated_ts"))
    )
    online_orders = combined.where(has_base | F.col("_pickup_in_increment")).select(
        "order_id",
        F.coalesce("channel", F.lit("pos")).alias("channel"),
        F.coalesce("pickup_store_id", "store_id").alias("store_id"),
        F.when(has_base, F.col("customer_key")).otherwise(F.col("pickup_customer_key")).alias("customer_key"),
        F.coalesce("order_ts", "pickup_ts").alias("order_ts"),
        F.greatest("updated_ts", "pickup_ts").alias("updated_ts"),
        F.when(pickup_newer, F.lit("completed")).otherwise(F.col("status")).alias("status"),
        F.when(F.col("pickup_ts").isNotNull(), F.lit("pick_up_in_store"))
        .otherwise(F.col("fulfilment"))
        .alias("fulfilment"),
        "currency",
        F.coalesce("item_amount", "pickup_amount").alias("item_amount"),
        F.coalesce("shipping_fee", F.lit(0).cast(MONEY)).alias("shipping_fee"),
        F.lit(run_id).alias("updated_run_id"),
    )

    online_lines = (
        winners.where(F.col("_from_increment") == 1)
        .select("order_id", F.posexplode("items").alias("_pos", "item"))
        .select(
            "order_id",
            (F.col("_pos") + 1).alias("line_no"),
            F.trim(F.col("item.sku")).alias("sku"),
            F.col("item.quantity").alias("quantity"),
            money(F.col("item.unit_price")).alias("unit_price"),
            line_amount(F.col("item.quantity"), F.col("item.unit_price")).alias("amount"),
            F.lit(None).cast("string").alias("original_order_id"),
            F.lit(run_id).alias("updated_run_id"),
        )
    )

    # POS receipts (pick-up copies excluded): one order per store and receipt.
    receipts = _pos_customer(
        pos.where(F.col("_reason").isNull() & F.col("_duplicate").isNull()), salt, country_code
    ).withColumn("order_id", F.concat_ws("-", "store_id", "receipt_no"))
    pos_lines = receipts.select(
        "order_id",
        "line_no",
        F.trim("sku").alias("sku"),
        "quantity",
        money(F.col("unit_price")).alias("unit_price"),
        line_amount(F.col("quantity"), F.col("unit_price")).alias("amount"),
        F.when(~blank("original_receipt_no"), F.concat_ws("-", "store_id", "original_receipt_no")).alias(
            "original_order_id"
        ),
        F.lit(run_id).alias("updated_run_id"),
    )
    pos_orders = attach_customer_key(
        receipts.groupBy("order_id", "store_id").agg(
            F.min("_sold_at").alias("order_ts"),
            F.max("_sold_at").alias("updated_ts"),
            F.sum(line_amount(F.col("quantity"), F.col("unit_price"))).try_cast(MONEY).alias("item_amount"),
            F.max("_namespace").alias("_namespace"),
            F.max_by("_source_id", F.struct("_namespace", "_source_id")).alias("_source_id"),
        ),
        customer_keys,
        "_namespace",
        "_source_id",
    ).select(
        "order_id",
        F.lit("pos").alias("channel"),
        "store_id",
        "customer_key",
        "order_ts",
        "updated_ts",
        F.lit("completed").alias("status"),
        F.lit("in_store").alias("fulfilment"),
        F.lit(None).cast("string").alias("currency"),
        "item_amount",
        F.lit(0).cast(MONEY).alias("shipping_fee"),
        F.lit(run_id).alias("updated_run_id"),
    )

    orders = online_orders.unionByName(pos_orders).select(
        *[F.col(f.name).cast(f.dataType) for f in SILVER["orders"].fields]
    )
    lines = online_lines.unionByName(pos_lines).select(
        *[F.col(c).cast(SILVER["order_lines"][c].dataType) for c in line_cols]
    )
    return ConformedOrders(orders=orders, order_lines=lines, superseded=superseded)


def touched_order_ids(online: DataFrame, pos: DataFrame) -> DataFrame:
    """Order ids of an increment that may already be in silver (online ids and picked-up online ids)."""
    return (
        online.where(F.col("_reason").isNull() & F.col("_duplicate").isNull())
        .select("order_id")
        .unionByName(pos.where(F.col("_is_pickup_copy")).select(F.col("online_order_id").alias("order_id")))
        .distinct()
    )


def remap_customer_keys(rows: DataFrame, merges: DataFrame) -> DataFrame:
    """`rows` with every merged-away customer_key replaced by its surviving key (other rows unchanged)."""
    moves = merges.select(
        F.col("merged_key").alias("_merged_key"), F.col("surviving_key").alias("_surviving_key")
    )
    return (
        rows.join(F.broadcast(moves), F.col("customer_key") == F.col("_merged_key"), "left")
        .withColumn("customer_key", F.coalesce("_surviving_key", "customer_key"))
        .drop("_merged_key", "_surviving_key")
    )
