"""Row triage shared by every silver transform: record ids, reason codes, duplicates, quarantine rows, reconciliation."""

from __future__ import annotations

from datetime import datetime

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from o2o.contracts import CORRUPT, LANDING, SILVER

# Reason codes a bronze row can be quarantined with (the `reason` column of silver.quarantine).
REASONS = (
    "malformed",  # the line did not parse (bronze `_corrupt_record` is set)
    "missing_key",  # a business key or a required id is null or blank
    "negative_price",  # a unit price, list price or shipping fee below zero
    "bad_quantity",  # quantity null, zero, or not positive where it must be (online items); order without items
    "unknown_channel",  # channel outside the vocabulary of the feed
    "impossible_timestamp",  # unparseable, before 2000, or after the as-of day
    "bad_rating",  # review rating outside 1-5
    "unknown_store",  # a store id that is not in the configured store list
    "unknown_status",  # an order status outside ORDER_STATUSES
    "unknown_fulfilment",  # an online fulfilment other than delivery | pickup
    "unknown_event",  # a clickstream event or action outside the feed's vocabulary
    "unknown_customer",  # a clickstream or review row whose customer id no identity maps to a customer key
)

# Categories of bronze rows that are neither in silver nor quarantined, but removed on purpose.
DUPLICATE_CATEGORIES = (
    "exact_duplicate",  # the same content again (redelivered file, repeated line)
    "superseded_status_update",  # an older state of an online order; the newer one (event time) wins
    "superseded_record",  # an older record of the same key (catalogue extract, CRM member change)
    "conflicting_duplicate",  # same business key, different content, no event time to order them
    "bopis_pos_copy",  # the POS copy of a buy-online-pick-up-in-store order: the online order counts
    "same_interaction",  # a second event with the same (customer, sku, event type, timestamp)
)

MIN_EVENT_TS = "2000-01-01 00:00:00"
PII_FIELDS = ("phone", "email", "bound_phone")
# A phone in a raw line: a mainland mobile however spaced, or any +international number; never part of a
# longer token (hashes, epoch milliseconds) and never a date (dates do not start with + or 1[3-9]d).
PHONE_TEXT = (
    r"(?<![0-9A-Za-z])(?:(?:\+|00)?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9A-Za-z])"
    r"|\+[0-9][0-9 ()\-]{6,16}[0-9](?![0-9A-Za-z])"
)
EMAIL_TEXT = r"[^@\s\",;]+@[^@\s\",;]+\.[A-Za-z]{2,}"


def landing_columns(feed: str) -> list[str]:
    """The landing (content) columns of a feed, in contract order."""
    return [field.name for field in LANDING[feed].fields]


def with_record_ids(bronze: DataFrame, feed: str, cluster_by: tuple[str, ...] = ()) -> DataFrame:
    """Bronze rows with `_payload` (raw text), `_content` (hash of the parsed values) and a deterministic `_record_id`.

    `_record_id` = sha2(source file | payload | occurrence of that payload in that file), so the same bronze
    row always gets the same id and re-quarantining it (a rerun) is idempotent.
    `cluster_by` (landing columns: the feed's business key) hash-partitions the rows once by that key, so
    this window and `mark_duplicates`' windows on the same key share one shuffle instead of three. Equal
    payloads parse to the same key, so adding it to the occurrence window changes no number.
    """
    content = F.to_json(F.struct(*[F.col(c) for c in landing_columns(feed)]))
    payload = F.coalesce(F.col(CORRUPT), F.col("_raw"), content)
    occurrence = Window.partitionBy(*cluster_by, "_source_file", "_payload").orderBy("_payload")
    if cluster_by:
        bronze = bronze.repartition(*[F.col(c) for c in cluster_by])
    return (
        bronze.withColumn("_payload", payload)
        .withColumn("_content", F.sha2(F.coalesce(F.col(CORRUPT), content), 256))
        .withColumn("_occurrence", F.row_number().over(occurrence))
        .withColumn(
            "_record_id",
            F.sha2(
                F.concat_ws("\u0001", "_source_file", "_payload", F.col("_occurrence").cast("string")), 256
            ),
        )
        .drop("_occurrence")
    )


def with_first_failure(rows: DataFrame, checks: list[tuple[Column, str, Column | str]]) -> DataFrame:
    """`rows` with `_reason`/`_detail` of the first check whose condition is true, in order; null when all pass.

    One flat CASE yields both as a struct, so each condition is evaluated once per row. Two nested CASE
    chains (one per column) made generated code beyond Java's 64 KB method limit on the online order
    checks, and Spark then ran the whole stage without code generation.
    """
    fate: Column | None = None
    for condition, code, text in checks:
        outcome = F.struct(
            F.lit(code).alias("reason"),
            (F.lit(text) if isinstance(text, str) else text).cast("string").alias("detail"),
        )
        matched = F.coalesce(condition, F.lit(False))
        fate = F.when(matched, outcome) if fate is None else fate.when(matched, outcome)
    return (
        rows.withColumn("_fate", fate)
        .withColumns({"_reason": F.col("_fate.reason"), "_detail": F.col("_fate.detail")})
        .drop("_fate")
    )


def blank(column: str | Column) -> Column:
    """True when the value is null or only white space."""
    col = F.col(column) if isinstance(column, str) else column
    return col.isNull() | (F.trim(col) == "")


def bad_timestamp(ts: Column, latest_ts: datetime) -> Column:
    """True when a parsed timestamp is missing (unparseable), before 2000 or after `latest_ts`."""
    return ts.isNull() | (ts < F.lit(MIN_EVENT_TS).cast("timestamp")) | (ts > F.lit(latest_ts))


def mark_duplicates(
    rows: DataFrame,
    keys: list[str],
    newest_first: list[Column],
    other_category: str,
) -> DataFrame:
    """Set `_duplicate` on valid rows (`_reason` null) that lose to another valid row with the same `keys`.

    Rows with the same content as a kept row are `exact_duplicate`; other losers (older by `newest_first`,
    or a deterministic tie-break on content) get `other_category`. Exactly one row per key stays unmarked.
    """
    valid = F.col("_reason").isNull()
    same_content = Window.partitionBy(valid, *keys, "_content").orderBy(*newest_first, "_record_id")
    same_key = Window.partitionBy(valid, *keys).orderBy(*newest_first, "_content", "_record_id")
    return (
        # Key window first: its shuffle (by valid + keys) also serves the finer content window.
        rows.withColumn("_key_rank", F.row_number().over(same_key))
        .withColumn("_content_rank", F.row_number().over(same_content))
        .withColumn(
            "_duplicate",
            F.when(~valid, F.lit(None).cast("string"))
            .when(F.col("_content_rank") > 1, F.lit("exact_duplicate"))
            .when(F.col("_key_rank") > 1, F.lit(other_category)),
        )
        .drop("_content_rank", "_key_rank")
    )


def kept(rows: DataFrame) -> DataFrame:
    """Rows that go on into silver: neither quarantined nor removed as duplicates."""
    return rows.where(F.col("_reason").isNull() & F.col("_duplicate").isNull())


def redact_pii(payload: Column) -> Column:
    """The raw payload with phone numbers and emails replaced by <phone>/<email>: PII stays in bronze.

    JSON fields named phone/email/bound_phone are blanked by name; anything else that looks like a phone
    or an email (CSV lines, free text) is replaced by pattern.
    """
    fields = "|".join(PII_FIELDS)
    by_name = F.regexp_replace(payload, rf'"({fields})"\s*:\s*"[^"]*"', '"$1":"<redacted>"')
    return F.regexp_replace(F.regexp_replace(by_name, EMAIL_TEXT, "<email>"), PHONE_TEXT, "<phone>")


def quarantine_rows(triaged: DataFrame, feed: str, run_id: str, quarantined_at: datetime) -> DataFrame:
    """silver.quarantine rows for every triaged bronze row that carries a reason code (payload PII redacted)."""
    return (
        triaged.where(F.col("_reason").isNotNull())
        .select(
            F.lit(feed).alias("feed"),
            F.col("_record_id").alias("record_id"),
            F.col("_reason").alias("reason"),
            F.col("_detail").alias("detail"),
            F.col("_source_file").alias("source_file"),
            redact_pii(F.col("_payload")).alias("raw_payload"),
            F.lit(run_id).alias("run_id"),
            F.lit(quarantined_at).cast("timestamp").alias("quarantined_at"),
        )
        .select(*[F.col(f.name).cast(f.dataType) for f in SILVER["quarantine"].fields])
    )


def apply_late_fates(triaged: DataFrame, late: DataFrame | None) -> DataFrame:
    """Triaged rows with fates decided after triage: `late` (`_record_id`, `_reason`, `_detail`, `_duplicate`).

    Only rows that triage had kept change: a late reason quarantines them (e.g. no customer key), a late
    duplicate category removes them (e.g. an online record older than the order silver already holds).
    """
    if late is None:
        return triaged
    fates = late.select(
        "_record_id",
        F.col("_reason").alias("_late_reason"),
        F.col("_detail").alias("_late_detail"),
        F.col("_duplicate").alias("_late_duplicate"),
    ).dropDuplicates(["_record_id"])
    still_kept = F.col("_reason").isNull() & F.col("_duplicate").isNull()
    return (
        triaged.join(fates, "_record_id", "left")
        .withColumn(
            "_detail",
            F.when(still_kept & F.col("_late_reason").isNotNull(), F.col("_late_detail")).otherwise(
                F.col("_detail")
            ),
        )
        .withColumn(
            "_duplicate",
            F.when(still_kept & F.col("_late_reason").isNull(), F.col("_late_duplicate")).otherwise(
                F.col("_duplicate")
            ),
        )
        .withColumn(
            "_reason", F.when(still_kept, F.coalesce("_late_reason", "_reason")).otherwise(F.col("_reason"))
        )
        .drop("_late_reason", "_late_detail", "_late_duplicate")
    )


def late_fates(
    rows: DataFrame, reason: str | None = None, duplicate: str | None = None, detail: str | None = None
) -> DataFrame:
    """(`_record_id`, `_reason`, `_detail`, `_duplicate`) for `apply_late_fates`: one reason or one duplicate category."""
    return rows.select(
        "_record_id",
        F.lit(reason).cast("string").alias("_reason"),
        F.lit(detail).cast("string").alias("_detail"),
        F.lit(duplicate).cast("string").alias("_duplicate"),
    )


def outcome_counts(triaged: DataFrame, feed: str) -> DataFrame:
    """(feed, outcome, category, rows): each bronze row once, as silver, quarantined (by reason) or duplicate."""
    return (
        triaged.select(
            F.when(F.col("_reason").isNotNull(), F.lit("quarantined"))
            .when(F.col("_duplicate").isNotNull(), F.lit("duplicate"))
            .otherwise(F.lit("silver"))
            .alias("outcome"),
            F.coalesce("_reason", "_duplicate", F.lit("silver")).alias("category"),
        )
        .groupBy("outcome", "category")
        .count()
        .select(F.lit(feed).alias("feed"), "outcome", "category", F.col("count").alias("rows"))
    )


def reconciliation(counts: list, bronze_rows: dict[str, int]) -> dict:
    """Per feed: bronze rows read, rows into silver, quarantined and duplicates by category, and whether they add up.

    `counts` are collected rows of `outcome_counts` (feed x outcome x category: a few dozen rows at most).
    """
    report: dict = {}
    for feed, read in bronze_rows.items():
        entry = {"bronze_rows": read, "silver_rows": 0, "quarantined": {}, "duplicates": {}}
        for row in counts:
            if row["feed"] != feed:
                continue
            if row["outcome"] == "silver":
                entry["silver_rows"] += row["rows"]
            else:
                bucket = entry["quarantined"] if row["outcome"] == "quarantined" else entry["duplicates"]
                bucket[row["category"]] = bucket.get(row["category"], 0) + row["rows"]
        accounted = (
            entry["silver_rows"] + sum(entry["quarantined"].values()) + sum(entry["duplicates"].values())
        )
        entry["balanced"] = accounted == read
        report[feed] = entry
    return report


def triage_crm_members(bronze: DataFrame) -> DataFrame:
    """CRM member rows with fates set; the newest record of a member (extract file, then ingest time) is kept.

    Kept rows feed identity resolution (customers, customer_identity); the CRM has no table of its own.
    """
    rows = with_record_ids(bronze, "crm_members").withColumn(
        "_member", F.upper(F.regexp_replace("member_id", r"\s+", ""))
    )
    checks = [
        (F.col(CORRUPT).isNotNull(), "malformed", "line does not fit the CSV header"),
        (blank("_member"), "missing_key", "member_id is missing"),
    ]
    return mark_duplicates(
        with_first_failure(rows, checks),
        keys=["_member"],
        newest_first=[F.col("_source_file").desc(), F.col("_ingested_at").desc()],
        other_category="superseded_record",
    ).drop("_member")
