"""Silver stage: the bronze versions not yet processed -> triage, identity, conform -> gated MERGEs -> watermark last."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pyspark.sql.functions as F
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from o2o import lake, quality
from o2o.config import Config
from o2o.contracts import (
    CORRUPT,
    FEEDS,
    OPS,
    SILVER,
    SILVER_DELETION_VECTORS,
    SILVER_KEYS,
    SILVER_PRUNE_BY,
    bronze_schema,
    bronze_table,
)
from o2o.frames import checkpointed, empty_frame, local_frame, union_all
from o2o.runs import StageResult, progress
from o2o.silver import identity
from o2o.silver.interactions import (
    INTERACTION_KEY,
    interactions_from,
    ranked_events,
    triage_app_clickstream,
    triage_mini_program_clickstream,
    triage_reviews,
)
from o2o.silver.orders import (
    conform_orders,
    remap_customer_keys,
    touched_order_ids,
    triage_online_orders,
    triage_pos_sales,
)
from o2o.silver.pii import pii_salt
from o2o.silver.products import conform_products, triage_catalogue
from o2o.silver.quarantine import (
    apply_late_fates,
    landing_columns,
    outcome_counts,
    quarantine_rows,
    reconciliation,
    triage_crm_members,
)

WATERMARKS = "ops.silver_watermarks"
WATERMARK_SCHEMA = OPS["silver_watermarks"]
IDENTITY_FEEDS = (
    "online_orders",
    "app_clickstream",
    "mini_program_clickstream",
    "pos_sales",
    "crm_members",
    "reviews",
)
WRITE_ORDER = ("quarantine", "products", "orders", "order_lines", "interactions")
IDENTITY_TABLES = ("identity_edges", "customer_merges", "customers", "customer_identity")
# Up to this many persons (merged-away and surviving keys) the interactions move names them in its MERGE
# condition; above it the condition leaves them out (the same result, the slower plan).
MOVE_KEYS_NAMED_AT_MOST = 10_000


def latest_event_ts(as_of: date) -> datetime:
    """The latest plausible event time for a run as of `as_of`: the end of that day in every time zone (UTC-12)."""
    return datetime.combine(as_of + timedelta(days=1), time(12, 0))


def watermarks(spark: SparkSession, cfg: Config) -> dict[str, int]:
    """feed -> last bronze version silver has fully processed (one row per feed; bounded)."""
    if not lake.exists(spark, cfg, WATERMARKS):
        return {}
    return {row["feed"]: row["bronze_version"] for row in lake.read(spark, cfg, WATERMARKS).collect()}


def _increment(
    spark: SparkSession, cfg: Config, feed: str, after: int | None, up_to: int | None
) -> DataFrame:
    if up_to is None or after == up_to:
        return empty_frame(spark, bronze_schema(feed))
    return lake.read_changes(spark, cfg, bronze_table(feed), after, up_to).select(
        *bronze_schema(feed).fieldNames()
    )


def _row_counts(frames: dict[str, DataFrame]) -> dict[str, int]:
    """name -> rows of each frame, counted in one Spark job (one row per frame comes back)."""
    counts = union_all(
        frame.agg(F.count(F.lit(1)).alias("rows")).select(F.lit(name).alias("name"), "rows")
        for name, frame in frames.items()
    )
    return {row["name"]: row["rows"] for row in counts.collect()}


def _existing(spark: SparkSession, cfg: Config, table: str) -> DataFrame | None:
    name = f"silver.{table}"
    return lake.read(spark, cfg, name) if lake.exists(spark, cfg, name) else None


def _pin(frame: DataFrame, cfg: Config, name: str) -> DataFrame:
    """The frame computed once into the stage's scratch folder: reused without recomputing or re-analysing its plan."""
    return lake.stage_frame(frame, cfg, "silver", name)


def _with_lake(spark: SparkSession, cfg: Config, table: str, new_rows: DataFrame) -> DataFrame:
    """The table in the lake plus this run's new rows (for reference checks before the write)."""
    existing = _existing(spark, cfg, table)
    return new_rows if existing is None else existing.unionByName(new_rows)


def run(
    spark: SparkSession, cfg: Config, as_of: date, run_id: str, accept: tuple[str, ...] = ()
) -> StageResult:
    """bronze.<feed> increments -> silver customers, identities, products, orders, order lines, interactions, quarantine."""
    lake.clear_staging(spark, cfg, "silver")  # a killed run's leftovers
    try:
        with quality.batched_results(spark, cfg):  # one ops.dq_results commit for the stage's gates
            return _run(spark, cfg, as_of, run_id, accept)
    finally:
        lake.clear_staging(spark, cfg, "silver")


def _run(spark: SparkSession, cfg: Config, as_of: date, run_id: str, accept: tuple[str, ...]) -> StageResult:
    result = StageResult(stage="silver")
    done = watermarks(spark, cfg)
    current = {feed: lake.version(spark, cfg, bronze_table(feed)) for feed in FEEDS}
    result.input_versions = {bronze_table(feed): version for feed, version in current.items()}
    pending = {
        feed: version
        for feed, version in current.items()
        if version is not None and version != done.get(feed)
    }
    if not pending:
        result.details = {"nothing_new": True}
        result.output_versions = {f"silver.{t}": lake.version(spark, cfg, f"silver.{t}") for t in SILVER}
        return result

    salt = pii_salt(cfg)
    country_code = cfg.silver.default_country_code
    store_timezones = cfg.store_timezones()
    latest_ts = latest_event_ts(as_of)
    run_ts = datetime.now(timezone.utc).replace(tzinfo=None)
    increments = {feed: _increment(spark, cfg, feed, done.get(feed), current[feed]) for feed in FEEDS}

    # Each feed's increment is read once and triaged once; the triaged rows feed identity, conform,
    # quarantine and the counts. Reused frames are written once to the stage's scratch folder (Parquet)
    # and read back: later plans start from a file scan, so they neither recompute nor carry (and
    # re-analyse) the whole stage's plan tree, and columns a step does not need (raw payloads) are not read.
    triage = {
        "online_orders": lambda df: triage_online_orders(df, sorted(store_timezones), latest_ts),
        "pos_sales": lambda df: triage_pos_sales(df, store_timezones, latest_ts),
        "app_clickstream": lambda df: triage_app_clickstream(df, latest_ts),
        "mini_program_clickstream": lambda df: triage_mini_program_clickstream(df, latest_ts),
        "reviews": lambda df: triage_reviews(df, latest_ts),
        "crm_members": triage_crm_members,
        "product_catalogue": triage_catalogue,
    }
    triaged = {feed: _pin(triage[feed](increments[feed]), cfg, f"triaged_{feed}") for feed in FEEDS}
    progress("silver", f"triaged the new bronze versions of {', '.join(sorted(pending))}")
    # Identity: persons from every identity the increment shows (quarantined rows excluded).
    observations, links = identity.identity_observations(
        {
            feed: triaged[feed].where(F.col("_reason").isNull()).select(*landing_columns(feed), CORRUPT)
            for feed in IDENTITY_FEEDS
        },
        salt,
        country_code,
        store_timezones,
    )
    # Read by the edges, first-seen times, resolution and golden records: computed once.
    observations = _pin(observations, cfg, "observations")
    links = _pin(links, cfg, "links")
    resolved = identity.resolve_identities(
        observations,
        links,
        _existing(spark, cfg, "customer_identity"),
        _existing(spark, cfg, "identity_edges"),
        run_id,
        run_ts,
        cfg.silver.max_identity_iterations,
    )
    progress("silver", f"identities resolved in {resolved.iterations} iteration(s)")
    merges = _pin(resolved.merges, cfg, "merges")
    lookup = _pin(resolved.assignments, cfg, "assignments")
    customers = identity.golden_customers(
        lookup, observations, _existing(spark, cfg, "customers"), merges, run_id
    )
    customers = _pin(customers, cfg, "customers")

    # Orders: combined with the silver rows of the orders this increment touches (newer wins by event time).
    existing_orders = _existing(spark, cfg, "orders")
    if existing_orders is None:
        existing_orders = empty_frame(spark, SILVER["orders"])
    existing_orders = existing_orders.join(
        touched_order_ids(triaged["online_orders"], triaged["pos_sales"]), "order_id", "left_semi"
    )
    conformed = conform_orders(
        triaged["online_orders"],
        triaged["pos_sales"],
        lookup,
        existing_orders,
        salt,
        country_code,
        run_id,
    )
    orders = _pin(remap_customer_keys(conformed.orders, merges), cfg, "orders")
    # What is written: the increment's orders and the other silver orders of persons merged away this run,
    # re-pointed to the surviving key in the same MERGE (a second MERGE would rewrite the table's files again).
    moved_orders = _moved_orders(spark, cfg, merges, orders)
    orders_out = orders if moved_orders is None else _pin(orders.unionByName(moved_orders), cfg, "orders_out")
    order_lines = _pin(conformed.order_lines, cfg, "order_lines")
    triaged["online_orders"] = _pin(
        apply_late_fates(triaged["online_orders"], conformed.superseded), cfg, "fated_online_orders"
    )

    # The ranked events feed both the interactions and the late fates: ranked (a sort of every event) once.
    ranked = _pin(
        ranked_events(
            triaged["app_clickstream"], triaged["mini_program_clickstream"], triaged["reviews"], lookup
        ),
        cfg,
        "ranked_events",
    )
    events = interactions_from(ranked, orders, order_lines, run_id)
    interactions = _pin(events.interactions, cfg, "interactions")
    for feed, fates in events.fates.items():
        # Read twice (quarantine rows, counts), but the fates are a filter of the ranked file and the
        # counts read three columns: cheaper than writing every event with its payload once more.
        triaged[feed] = apply_late_fates(triaged[feed], fates)

    seen_skus = order_lines.select("sku").unionByName(interactions.select("sku")).distinct()
    known_skus = _existing(spark, cfg, "products")
    known_skus = (
        known_skus.where("is_known").select("sku").join(seen_skus, "sku", "left_semi")
        if known_skus is not None
        else empty_frame(spark, "sku string")
    )
    products = _pin(
        conform_products(triaged["product_catalogue"], seen_skus, known_skus, run_id), cfg, "products"
    )

    quarantine = _pin(
        union_all(quarantine_rows(triaged[feed], feed, run_id, run_ts) for feed in FEEDS), cfg, "quarantine"
    )

    # Reconciliation: feed x outcome x category, a few dozen rows at most (bounded collect).
    count_rows = union_all(outcome_counts(triaged[feed], feed) for feed in FEEDS).collect()
    # Counted on the bronze increments themselves, not on the triaged rows: were triage to lose or double
    # a row, the reconciliation must not balance by construction. One query for the seven feeds.
    bronze_rows = _row_counts(increments)
    report = reconciliation(count_rows, bronze_rows)
    anonymous_orders = orders.where(F.col("customer_key").isNull()).count()
    anonymous_lines = events.anonymous_purchase_lines.count()

    # Writes: gate each table's new rows, then MERGE on business keys.
    outputs = {
        "quarantine": quarantine,
        "products": products,
        "orders": orders_out,
        "order_lines": order_lines,
        "interactions": interactions,
    }
    # What the suites' reference checks see: the silver tables as they will be after this run's writes.
    related = {
        "silver.orders": _with_lake(spark, cfg, "orders", orders_out),
        "silver.customers": _with_lake(spark, cfg, "customers", customers),
        "silver.products": _with_lake(spark, cfg, "products", products),
    }
    written_rows: dict[str, int] = {}

    def count_and_announce(table: str, rows: DataFrame) -> None:
        # Staged frames: the count reads Parquet footers.
        written_rows[table] = rows.count()
        done = f"{len(written_rows)}/{len(WRITE_ORDER) + 2}"  # and customers, customer_identity below
        progress("silver", f"silver.{table}: {written_rows[table]:,} rows to gate and merge ({done})")

    for table in WRITE_ORDER:
        name = f"silver.{table}"
        count_and_announce(table, outputs[table])
        quality.gate(
            spark,
            cfg,
            name,
            outputs[table],
            run_id=run_id,
            stage="silver",
            as_of=as_of,
            related=related,
            accept=accept,
            feed_rows=bronze_rows,  # the quarantine share is of this increment, not of all history
        )
        lake.ensure_table(
            spark,
            cfg,
            name,
            SILVER[table],
            change_feed=True,
            deletion_vectors=table in SILVER_DELETION_VECTORS,
        )
        # Orders need no newer_wins_by here: conform_orders already combined each order with its silver
        # row by event time, and a pick-up may change fulfilment/store without a newer updated_ts.
        changed = ("reason", "detail", "source_file", "raw_payload") if table == "quarantine" else None
        lake.merge_upsert(
            outputs[table],
            cfg,
            name,
            SILVER_KEYS[table],
            update_when_changed=changed,
            prune_by=SILVER_PRUNE_BY.get(table),
        )

    _move_interactions(spark, cfg, merges)

    # Identity tables last, customer_identity the very last: until it is written a rerun resolves the
    # same merges again, so a run killed in between converges.
    # Read by a gate and a MERGE: computed once, not once per read. The new edges were computed once by
    # the resolver already (its graph reads them too).
    identity_rows = _pin(resolved.identity, cfg, "customer_identity")
    edges = resolved.edges
    for table, rows in (("customers", customers), ("customer_identity", identity_rows)):
        count_and_announce(table, rows)
        # With `related`: identities of persons new in this run refer to customers not yet written.
        quality.gate(
            spark,
            cfg,
            f"silver.{table}",
            rows,
            run_id=run_id,
            stage="silver",
            as_of=as_of,
            related=related,
            accept=accept,
        )
    for table in IDENTITY_TABLES:
        lake.ensure_table(spark, cfg, f"silver.{table}", SILVER[table], change_feed=True)
    # The resolver's new edges are exactly those not yet in the table (an edge's columns are its key): appended.
    # A rerun after a kill finds the appended ones in the table and adds none twice.
    lake.insert_new(edges, cfg, "silver.identity_edges")
    lake.merge_upsert(
        merges,
        cfg,
        "silver.customer_merges",
        SILVER_KEYS["customer_merges"],
        update_when_changed=("surviving_key",),
    )
    lake.merge_upsert(
        customers,
        cfg,
        "silver.customers",
        SILVER_KEYS["customers"],
        delete_keys=identity.retired_customer_keys(merges),
    )
    lake.merge_upsert(identity_rows, cfg, "silver.customer_identity", SILVER_KEYS["customer_identity"])

    # The watermark is written last: a run killed before this line reprocesses the same increment.
    lake.ensure_table(spark, cfg, WATERMARKS, WATERMARK_SCHEMA)
    marks = local_frame(
        spark,
        [(feed, version, run_id, run_ts) for feed, version in sorted(pending.items())],
        WATERMARK_SCHEMA,
    )
    lake.merge_upsert(marks, cfg, WATERMARKS, ("feed",), update_when_changed=("bronze_version",))

    result.rows_in = sum(entry["bronze_rows"] for entry in report.values())
    result.rows_out = sum(entry["silver_rows"] for entry in report.values())
    result.rows_rejected = sum(sum(entry["quarantined"].values()) for entry in report.values())
    result.details = {
        # Compared by the next run's volume checks.
        "rows_out_by_table": {f"silver.{table}": rows for table, rows in written_rows.items() if rows},
        "reconciliation": report,
        "bronze_versions_processed": {feed: [done.get(feed), version] for feed, version in pending.items()},
        "anonymous_orders": anonymous_orders,
        "anonymous_purchase_lines": anonymous_lines,
        "identity_iterations": resolved.iterations,
    }
    result.output_versions = {f"silver.{t}": lake.version(spark, cfg, f"silver.{t}") for t in SILVER}
    result.output_versions[WATERMARKS] = lake.version(spark, cfg, WATERMARKS)
    if not all(entry["balanced"] for entry in report.values()):
        raise RuntimeError(
            f"silver reconciliation does not add up (bronze = silver + quarantine + duplicates): {report}"
        )
    return result


def _moved_orders(
    spark: SparkSession, cfg: Config, merges: DataFrame, increment: DataFrame
) -> DataFrame | None:
    """silver.orders rows of persons merged away this run, under the surviving key (not those in `increment`).

    None when no person was merged or there are no silver orders yet. A run killed after the orders MERGE
    re-resolves the same merges (customer_identity is written last) and finds no order left to move.
    """
    existing = _existing(spark, cfg, "orders")
    if existing is None or merges.isEmpty():
        return None
    merged_keys = merges.select(F.col("merged_key").alias("customer_key"))
    return remap_customer_keys(
        existing.join(merged_keys, "customer_key", "left_semi").join(
            increment.select("order_id"), "order_id", "left_anti"
        ),
        merges,
    ).select(*increment.columns)


def _move_interactions(spark: SparkSession, cfg: Config, merges: DataFrame) -> None:
    """Re-point interactions of persons merged away this run to the surviving key in ONE MERGE.

    Each moved event is inserted under the new key and its old row deleted, in one commit, so a killed
    run leaves either every old row or every moved one (its rerun, with the same merges as
    customer_identity is not yet re-pointed, then moves what is left). A moved event that the surviving
    customer already has is not inserted twice.
    """
    if not lake.exists(spark, cfg, "silver.interactions") or merges.isEmpty():
        return
    merged_away = lake.read(spark, cfg, "silver.interactions").join(
        merges.select(F.col("merged_key").alias("customer_key")), "customer_key", "left_semi"
    )
    # Computed once: the moved rows and the delete markers are both derived from it (one scan of the table).
    with checkpointed(merged_away) as old_rows:
        if old_rows.isEmpty():
            return
        source = (
            remap_customer_keys(old_rows, merges)
            .dropDuplicates(INTERACTION_KEY)
            .withColumn("_delete", F.lit(False))
            .unionByName(old_rows.withColumn("_delete", F.lit(True)))
        )
        on = F.expr(" AND ".join(f"t.`{k}` <=> s.`{k}`" for k in INTERACTION_KEY))
        persons = _person_keys(merges, MOVE_KEYS_NAMED_AT_MOST)
        if persons is not None:
            # Only these persons' rows can match. Named, they are the only target rows the MERGE joins;
            # unnamed, it joins the source with every row of the table: 22-23 s of a 1M-line day's
            # 100 s silver run, against 5.2 s named (2026-12-03).
            on = on & F.col("t.customer_key").isin(persons)
        (
            DeltaTable.forPath(spark, lake.table_path(cfg, "silver.interactions"))
            .alias("t")
            .merge(source.alias("s"), on)
            .whenMatchedDelete(condition="s._delete")
            .whenNotMatchedInsert(condition="NOT s._delete", values={c: f"s.`{c}`" for c in old_rows.columns})
            .execute()
        )


def _person_keys(merges: DataFrame, at_most: int) -> list[str] | None:
    """The merged-away and surviving keys of `merges`, or None when there are more than `at_most` (bounded collect)."""
    keys = (
        merges.select(F.explode(F.array("merged_key", "surviving_key")).alias("customer_key"))
        .distinct()
        .limit(at_most + 1)
        .collect()
    )
    return None if len(keys) > at_most else sorted(row["customer_key"] for row in keys)
