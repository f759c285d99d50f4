"""Schemas: the landing files of every channel feed, and every bronze, silver, gold and ops table."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

MONEY = DecimalType(12, 2)
BIG_MONEY = DecimalType(16, 2)

CORRUPT = "_corrupt_record"
LINEAGE = StructType(
    [
        StructField("_source_file", StringType(), False),
        StructField("_ingested_at", TimestampType(), False),
        StructField("_run_id", StringType(), False),
        StructField("_channel", StringType(), True),
        StructField("_raw", StringType(), True),
        StructField("_extra", StringType(), True),
        StructField(CORRUPT, StringType(), True),
    ]
)


def _schema(*fields: tuple) -> StructType:
    return StructType([StructField(name, dtype, True) for name, dtype in fields])


# ---------------------------------------------------------------- landing feeds (what channels export)

ONLINE_ORDER_ITEM = _schema(("sku", StringType()), ("quantity", IntegerType()), ("unit_price", DoubleType()))

LANDING = {
    # JSON lines, one order state per line; an order appears again when its status changes.
    "online_orders": _schema(
        ("order_id", StringType()),
        ("channel", StringType()),  # web | app | mini_program
        ("customer_id", StringType()),  # platform account (web, app) or mini-program openid
        ("phone", StringType()),  # as typed by the customer: many formats
        ("email", StringType()),
        ("order_ts", StringType()),  # ISO 8601 with offset
        ("updated_ts", StringType()),  # ISO 8601 with offset; newer record wins
        ("status", StringType()),
        ("fulfilment", StringType()),  # delivery | pickup
        ("pickup_store_id", StringType()),
        ("shipping_fee", DoubleType()),
        ("currency", StringType()),
        ("items", ArrayType(ONLINE_ORDER_ITEM)),
    ),
    # JSON lines from the app SDK.
    "app_clickstream": _schema(
        ("event_id", StringType()),
        ("event_type", StringType()),  # view | cart | favourite
        ("user_id", StringType()),  # platform account when logged in, else null
        ("device_id", StringType()),
        ("sku", StringType()),
        ("event_ts", StringType()),  # ISO 8601 UTC
        ("session_id", StringType()),
        ("app_version", StringType()),
    ),
    # JSON lines from the mini-program back end: its own names and epoch milliseconds.
    "mini_program_clickstream": _schema(
        ("log_id", StringType()),
        ("openid", StringType()),
        ("bound_phone", StringType()),  # present once the user authorised the phone number
        ("action", StringType()),  # browse | add_cart | collect
        ("item_id", StringType()),
        ("ts", LongType()),  # epoch milliseconds
        ("scene", IntegerType()),
    ),
    # CSV per store per day, one row per line item, store-local time.
    "pos_sales": _schema(
        ("store_id", StringType()),
        ("receipt_no", StringType()),
        ("line_no", IntegerType()),
        ("sold_at_local", StringType()),  # yyyy-MM-dd HH:mm:ss in the store's time zone
        ("sku", StringType()),
        ("quantity", IntegerType()),  # negative = return
        ("unit_price", DoubleType()),
        ("member_card", StringType()),
        ("phone", StringType()),
        ("online_order_id", StringType()),  # set when an online order is picked up in store
        ("original_receipt_no", StringType()),  # set on returns
    ),
    # CSV of new and changed CRM members per day.
    "crm_members": _schema(
        ("member_id", StringType()),
        ("phone", StringType()),
        ("email", StringType()),
        ("city", StringType()),
        ("register_channel", StringType()),
        ("registered_at", StringType()),  # yyyy-MM-dd
    ),
    # CSV catalogue (full extract).
    "product_catalogue": _schema(
        ("sku", StringType()),
        ("product_name", StringType()),
        ("category", StringType()),
        ("brand", StringType()),
        ("list_price", DoubleType()),
        ("launched_at", StringType()),
    ),
    # JSON lines of reviews written online.
    "reviews": _schema(
        ("review_id", StringType()),
        ("channel", StringType()),
        ("customer_id", StringType()),
        ("order_id", StringType()),
        ("sku", StringType()),
        ("rating", IntegerType()),
        ("review_ts", StringType()),  # ISO 8601 with offset
        ("review_text", StringType()),
    ),
}

LANDING_FORMAT = {
    "online_orders": "json",
    "app_clickstream": "json",
    "mini_program_clickstream": "json",
    "pos_sales": "csv",
    "crm_members": "csv",
    "product_catalogue": "csv",
    "reviews": "json",
}

# The channel each feed comes from; online_orders carries its own channel per record.
FEED_CHANNEL = {
    "online_orders": None,
    "app_clickstream": "app",
    "mini_program_clickstream": "mini_program",
    "pos_sales": "pos",
    "crm_members": "crm",
    "product_catalogue": "catalogue",
    "reviews": None,
}

FEEDS = tuple(LANDING)


def bronze_schema(feed: str) -> StructType:
    """Bronze table of a feed: the landing columns, then lineage, raw text and the corrupt-record column."""
    return StructType(LANDING[feed].fields + LINEAGE.fields)


def bronze_table(feed: str) -> str:
    return f"bronze.{feed}"


# ---------------------------------------------------------------- silver (the contract downstream reads)

CHANNELS = ("web", "app", "mini_program", "pos")
ONLINE_CHANNELS = ("web", "app", "mini_program")
FULFILMENTS = ("delivery", "pick_up_in_store", "in_store")
ORDER_STATUSES = (
    "created",
    "paid",
    "shipped",
    "delivered",
    "ready_for_pickup",
    "completed",
    "cancelled",
    "returned",
)
EVENT_TYPES = ("view", "cart", "favourite", "purchase", "review")

SILVER = {
    "customers": _schema(
        ("customer_key", StringType()),
        ("member_id", StringType()),
        ("phone_hash", StringType()),
        ("email_hash", StringType()),
        ("first_channel", StringType()),
        ("first_seen_ts", TimestampType()),
        ("channels_seen", ArrayType(StringType())),
        ("is_member", BooleanType()),
        ("is_identified", BooleanType()),  # false for an anonymous device profile
        ("city", StringType()),
        ("updated_run_id", StringType()),
    ),
    "customer_identity": _schema(
        ("channel", StringType()),  # identity namespace: web, app, mini_program, app_device, pos, crm
        ("source_customer_id", StringType()),
        ("customer_key", StringType()),
        ("first_seen_ts", TimestampType()),
        ("updated_run_id", StringType()),
    ),
    "customer_merges": _schema(
        ("merged_key", StringType()),
        ("surviving_key", StringType()),
        ("run_id", StringType()),
        ("merged_at", TimestampType()),
    ),
    "products": _schema(
        ("sku", StringType()),
        ("product_name", StringType()),
        ("category", StringType()),
        ("brand", StringType()),
        ("list_price", MONEY),
        ("is_known", BooleanType()),  # false: seen in sales but missing from the catalogue
        ("updated_run_id", StringType()),
    ),
    "orders": _schema(
        ("order_id", StringType()),
        ("channel", StringType()),
        ("store_id", StringType()),
        ("customer_key", StringType()),  # null for anonymous POS sales
        ("order_ts", TimestampType()),  # UTC
        ("updated_ts", TimestampType()),  # UTC event time of the newest record
        ("status", StringType()),
        ("fulfilment", StringType()),
        ("currency", StringType()),
        ("item_amount", MONEY),
        ("shipping_fee", MONEY),
        ("updated_run_id", StringType()),
    ),
    "order_lines": _schema(
        ("order_id", StringType()),
        ("line_no", IntegerType()),
        ("sku", StringType()),
        ("quantity", IntegerType()),  # negative = return
        ("unit_price", MONEY),
        ("amount", MONEY),
        ("original_order_id", StringType()),  # the order a return line refers to, when the feed says
        ("updated_run_id", StringType()),
    ),
    "interactions": _schema(
        ("customer_key", StringType()),
        ("sku", StringType()),
        ("event_type", StringType()),
        ("event_ts", TimestampType()),
        ("channel", StringType()),
        ("quantity", IntegerType()),
        ("rating", IntegerType()),
        ("updated_run_id", StringType()),
    ),
    "identity_edges": _schema(
        ("namespace", StringType()),  # identity namespace, as customer_identity.channel
        ("source_customer_id", StringType()),
        (
            "attribute",
            StringType(),
        ),  # member | phone | email | link (a direct id-id link: value = linked identity)
        ("value", StringType()),  # member id, salted phone/email hash, or 'namespace:source_customer_id'
    ),
    "quarantine": _schema(
        ("feed", StringType()),
        ("record_id", StringType()),
        ("reason", StringType()),
        ("detail", StringType()),
        ("source_file", StringType()),
        ("raw_payload", StringType()),
        ("run_id", StringType()),
        ("quarantined_at", TimestampType()),
    ),
}

SILVER_KEYS = {
    "customers": ("customer_key",),
    "customer_identity": ("channel", "source_customer_id"),
    "customer_merges": ("merged_key",),
    "identity_edges": ("namespace", "source_customer_id", "attribute", "value"),
    "products": ("sku",),
    "orders": ("order_id",),
    "order_lines": ("order_id", "line_no"),
    "interactions": ("customer_key", "sku", "event_type", "event_ts"),
    "quarantine": ("feed", "record_id"),
}
# Key columns a silver MERGE prunes the target's files by (`lake.merge_upsert(prune_by=...)`): an increment
# holds mostly recent events, so the files of older ones are not read.
SILVER_PRUNE_BY = {"interactions": "event_ts"}
# Silver tables made with deletion vectors (`lake.ensure_table(deletion_vectors=True)`). interactions is the
# table an increment changes a little and would otherwise rewrite whole: moving merged persons' events
# copied every one of its rows (86% of all the rows one demo-size day copied). Not the others: a table with
# the feature costs every query that reads it an extra Spark job, and on the demo lake that cost more than
# rewriting those smaller tables (measured in the silver stage's notes, 2026-12-01).
SILVER_DELETION_VECTORS = frozenset({"interactions"})

# ---------------------------------------------------------------- ops (run bookkeeping)

OPS = {
    "pipeline_runs": _schema(
        ("run_id", StringType()),
        ("stage", StringType()),
        ("as_of", DateType()),
        ("env", StringType()),
        ("status", StringType()),  # succeeded | failed | skipped
        ("started_at", TimestampType()),
        ("finished_at", TimestampType()),
        ("duration_s", DoubleType()),
        ("input_versions", StringType()),  # JSON {table: version}
        ("output_versions", StringType()),  # JSON {table: version}
        ("rows_in", LongType()),
        ("rows_out", LongType()),
        ("rows_rejected", LongType()),
        ("details", StringType()),  # JSON: per-feed counts, reconciliation
        ("error", StringType()),
    ),
    # Bronze's ledger (o2o.bronze.ingest): one row per ingested landing file, with the version of
    # bronze.<feed> it was read at; trusted for a feed only while that table is still at that version.
    "bronze_files": StructType(
        [
            StructField("feed", StringType(), False),
            StructField("file", StringType(), False),  # ledger key: <feed>/<delivery date>/<file>
            StructField("bronze_version", LongType(), False),
            StructField("run_id", StringType(), True),  # the run that last rewrote the ledger
        ]
    ),
    # Silver's watermark (o2o.silver.stage): per feed, the last bronze version silver fully processed.
    "silver_watermarks": StructType(
        [
            StructField("feed", StringType(), False),
            StructField("bronze_version", LongType(), False),
            StructField("run_id", StringType(), True),
            StructField("processed_at", TimestampType(), True),
        ]
    ),
    # One row per expectation result of every quality gate run (o2o.quality).
    "dq_results": _schema(
        ("run_id", StringType()),
        ("stage", StringType()),
        ("table_name", StringType()),
        ("table_version", LongType()),  # current version of the target table when checked; null = new table
        ("as_of", DateType()),
        ("expectation", StringType()),  # the check name operators use with --accept-dq-failure
        ("expectation_type", StringType()),  # the Great Expectations expectation behind it
        ("column_name", StringType()),
        ("severity", StringType()),  # critical | warn
        ("success", BooleanType()),
        ("observed_value", StringType()),
        ("threshold", StringType()),
        ("element_count", LongType()),
        ("unexpected_count", LongType()),
        ("unexpected_percent", DoubleType()),
        ("accepted_by_operator", BooleanType()),
        ("error", StringType()),
        ("checked_at", TimestampType()),
    ),
}


@dataclass(frozen=True)
class TableSpec:
    """A table's name, schema and business key."""

    name: str
    schema: StructType
    keys: tuple[str, ...] = ()


def silver_spec(table: str) -> TableSpec:
    return TableSpec(f"silver.{table}", SILVER[table], SILVER_KEYS[table])


# ---------------------------------------------------------------- reco (recommendations, model metrics, model record)

RECO = {
    "gold.recommendations": _schema(
        ("as_of", DateType()),
        ("customer_key", StringType()),
        ("rank", IntegerType()),  # 1 = best
        ("sku", StringType()),
        ("score", DoubleType()),  # ALS preference, or the product's share of its segment's interest
        ("reason", StringType()),  # als | segment_popular (cold start)
        ("model_version", StringType()),
        ("run_id", StringType()),
    ),
    "gold.model_metrics": _schema(
        ("as_of", DateType()),
        ("run_id", StringType()),
        ("model_version", StringType()),
        ("split", StringType()),  # validation (tuning) | test
        ("model", StringType()),  # als | als_explicit | global_popular | segment_popular | buy_again
        ("params", StringType()),  # JSON
        ("metric", StringType()),  # precision_at_k | recall_at_k | ndcg_at_k | map_at_k | rmse | mae
        ("k", IntegerType()),
        ("value", DoubleType()),
        ("customers", LongType()),  # customers (ranking) or rows (rating errors) evaluated
    ),
    "ops.models": _schema(
        ("model_version", StringType()),
        ("trained_at", TimestampType()),  # naive UTC
        ("as_of", DateType()),
        ("run_id", StringType()),
        ("model_path", StringType()),
        ("params", StringType()),  # JSON: chosen ALS parameters
        ("metrics", StringType()),  # JSON: test metrics of ALS (implicit and explicit)
        ("baseline_metrics", StringType()),  # JSON: {baseline: {metric: value}}
        ("tuning", StringType()),  # JSON: every tried combination with its validation metrics
        ("input_versions", StringType()),  # JSON {table: Delta version}
        ("code_version", StringType()),
        ("customers", LongType()),
        ("skus", LongType()),
    ),
}


# ---------------------------------------------------------------- gold (snapshots partitioned by as_of)

GOLD = {
    # One row per customer with a purchase in the look-back window; scores and segments of that as-of.
    "customer_rfm": _schema(
        ("as_of", DateType()),
        ("customer_key", StringType()),
        ("recency_days", IntegerType()),  # as_of minus the UTC day of the last purchase
        ("frequency", LongType()),  # distinct purchase orders
        ("monetary", BIG_MONEY),  # line amounts net of returns
        ("r_score", IntegerType()),  # 1-5: 1 + floor(5 x customers strictly worse / customers)
        ("f_score", IntegerType()),
        ("m_score", IntegerType()),
        ("fm_score", IntegerType()),  # (f_score + m_score + 1) div 2
        ("rfm_cell", StringType()),  # e.g. "545"
        (
            "r_high",
            BooleanType(),
        ),  # value model: more recent / more orders / more spend than the population mean
        ("f_high", BooleanType()),
        ("m_high", BooleanType()),
        ("segment", StringType()),  # 11-segment score model
        ("value_segment", StringType()),  # 8-class value model, English
        ("value_segment_cn", StringType()),  # 8-class value model, Chinese
        ("previous_segment", StringType()),  # segment in the previous snapshot, null if absent there
        ("online_recency_days", IntegerType()),
        ("online_frequency", LongType()),
        ("online_monetary", BIG_MONEY),
        ("offline_recency_days", IntegerType()),
        ("offline_frequency", LongType()),
        ("offline_monetary", BIG_MONEY),
        ("channels_used", ArrayType(StringType())),
        ("channel_count", IntegerType()),
        ("first_channel", StringType()),  # channel of the first purchase ever (up to as_of)
        ("offline_spend_share", DoubleType()),  # share of gross spend made in stores
        ("pickup_orders", LongType()),
        ("avg_days_between_orders", DoubleType()),
    ),
    "segment_moves": _schema(
        ("as_of", DateType()),
        ("previous_as_of", DateType()),
        ("previous_segment", StringType()),  # null: not in the previous snapshot
        ("segment", StringType()),  # null: dropped out of the look-back window
        ("customers", LongType()),
    ),
    "segment_move_customers": _schema(
        ("as_of", DateType()),
        ("previous_as_of", DateType()),
        ("customer_key", StringType()),
        ("previous_segment", StringType()),
        ("segment", StringType()),
    ),
    "channel_kpis": _schema(
        ("as_of", DateType()),
        ("day", DateType()),  # UTC day
        ("channel", StringType()),
        ("sales", BIG_MONEY),  # net: gross sales minus returns
        ("gross_sales", BIG_MONEY),
        ("returns", BIG_MONEY),
        ("orders", LongType()),  # purchase orders
        ("aov", BIG_MONEY),  # gross sales / purchase orders
        ("active_customers", LongType()),
        ("new_customers", LongType()),  # first purchase ever was this day in this channel
        ("return_rate", DoubleType()),  # returns / gross sales
        ("pickup_share", DoubleType()),  # pick-up-in-store orders / orders
        (
            "omnichannel_customer_share",
            DoubleType(),
        ),  # active customers who bought online and offline by this day
        ("online_to_offline", LongType()),  # online-first customers buying offline for the first time
        ("offline_to_online", LongType()),  # store-first customers buying online for the first time
    ),
    "segment_targets": _schema(
        ("as_of", DateType()),
        ("campaign_id", StringType()),
        ("customer_key", StringType()),
        ("segment", StringType()),
        ("preferred_channel", StringType()),
        ("preferred_store", StringType()),
        ("is_control", BooleanType()),
        ("recommended_skus", ArrayType(StringType())),
    ),
    "campaign_effect": _schema(
        ("as_of", DateType()),
        ("campaign_id", StringType()),
        ("list_as_of", DateType()),
        ("start_date", DateType()),
        ("end_date", DateType()),  # last day observed (inclusive)
        ("days_observed", IntegerType()),
        ("window_complete", BooleanType()),
        ("treated_customers", LongType()),
        ("control_customers", LongType()),
        ("treated_purchase_rate", DoubleType()),
        ("control_purchase_rate", DoubleType()),
        ("purchase_rate_diff", DoubleType()),
        ("purchase_rate_ci_low", DoubleType()),
        ("purchase_rate_ci_high", DoubleType()),
        ("treated_revenue_per_customer", DoubleType()),
        ("control_revenue_per_customer", DoubleType()),
        ("revenue_diff", DoubleType()),
        ("revenue_ci_low", DoubleType()),
        ("revenue_ci_high", DoubleType()),
    ),
}

GOLD_KEYS = {
    "customer_rfm": ("as_of", "customer_key"),
    "segment_moves": ("as_of", "previous_segment", "segment"),
    "segment_move_customers": ("as_of", "customer_key"),
    "channel_kpis": ("as_of", "day", "channel"),
    "segment_targets": ("as_of", "campaign_id", "customer_key"),
    "campaign_effect": ("as_of", "campaign_id"),
}


def all_tables() -> list[str]:
    """Every table the contracts name, in layer order: bronze, silver, gold, model tables, ops."""
    names = [bronze_table(feed) for feed in FEEDS]
    names += [f"silver.{t}" for t in SILVER]
    names += [t if "." in t else f"gold.{t}" for t in (*GOLD, *RECO)]
    names += [f"ops.{t}" for t in OPS]
    return list(dict.fromkeys(names))
