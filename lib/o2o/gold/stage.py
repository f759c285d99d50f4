"""The gold stage: silver orders and customers -> RFM snapshot, segment moves, channel KPIs, target lists, campaign effect."""

from __future__ import annotations

from datetime import date, timedelta

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from o2o import lake, quality
from o2o.config import Config
from o2o.contracts import GOLD
from o2o.frames import checkpointed, empty_frame, union_all
from o2o.gold.campaign import campaign_effect, campaign_outcomes
from o2o.gold.kpis import channel_kpis
from o2o.gold.rfm import customer_values, order_facts, score_rfm
from o2o.gold.segments import (
    SegmentRules,
    assign_segments,
    load_segment_rules,
    segment_move_customers,
    segment_moves,
)
from o2o.gold.targets import Campaign, customer_preferences, load_campaigns, segment_targets
from o2o.runs import StageResult, progress

STAGE = "gold"
INPUTS = ("silver.orders", "silver.order_lines", "silver.customers")
RECOMMENDATIONS = "gold.recommendations"


def conform(df: DataFrame, table: str) -> DataFrame:
    """The columns of gold.<table> in contract order and types."""
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in GOLD[table].fields])


def customer_rfm(values: DataFrame, as_of: date, rules: SegmentRules) -> DataFrame:
    """Scores and both segment schemes on customer values (rfm.customer_values); previous_segment not yet set."""
    return assign_segments(score_rfm(values), rules).withColumn("as_of", F.lit(as_of))


def campaign_windows(
    campaigns: tuple[Campaign, ...], as_of: date, window_days: int
) -> dict[str, tuple[date, date]]:
    """campaign_id -> (start, last observed day) for campaigns that have started by `as_of`."""
    return {
        c.campaign_id: (c.start_date, min(c.start_date + timedelta(days=window_days - 1), as_of))
        for c in campaigns
        if c.start_date is not None and c.start_date <= as_of
    }


def _snapshot(spark: SparkSession, cfg: Config, name: str, as_of: date) -> DataFrame | None:
    if not lake.exists(spark, cfg, name):
        return None
    return lake.read(spark, cfg, name).where(F.col("as_of") == F.lit(as_of))


def _previous_as_of(spark: SparkSession, cfg: Config, as_of: date) -> date | None:
    if not lake.exists(spark, cfg, "gold.customer_rfm"):
        return None
    # One aggregated row; bounded.
    return (
        lake.read(spark, cfg, "gold.customer_rfm")
        .where(F.col("as_of") < F.lit(as_of))
        .agg(F.max("as_of").alias("previous"))
        .head()["previous"]
    )


def _recommendations(spark: SparkSession, cfg: Config, as_of: date) -> DataFrame | None:
    """The newest recommendations up to as_of (customer_key, rank, sku), or None while the table does not exist."""
    if not lake.exists(spark, cfg, RECOMMENDATIONS):
        return None
    recommendations = lake.read(spark, cfg, RECOMMENDATIONS)
    if not {"customer_key", "rank", "sku"} <= set(recommendations.columns):
        return None
    if "as_of" in recommendations.columns:
        # One aggregated row; bounded.
        newest = (
            recommendations.where(F.col("as_of") <= F.lit(as_of))
            .agg(F.max("as_of").alias("newest"))
            .head()["newest"]
        )
        if newest is None:
            return None
        recommendations = recommendations.where(F.col("as_of") == F.lit(newest))
    return recommendations.select("customer_key", "rank", "sku")


def _write(
    spark: SparkSession,
    cfg: Config,
    table: str,
    df: DataFrame,
    as_of: date,
    run_id: str,
    accept: tuple[str, ...],
) -> int:
    name = f"gold.{table}"
    # Computed once: the gate and the write read the same materialised rows.
    with checkpointed(conform(df, table)) as rows:
        quality.gate(spark, cfg, name, rows, run_id=run_id, stage=STAGE, as_of=as_of, accept=accept)
        lake.replace_snapshot(rows, cfg, name, as_of)
        written = rows.count()
    progress(STAGE, f"{name}: {written:,} rows as of {as_of.isoformat()}")
    return written


def run(
    spark: SparkSession, cfg: Config, as_of: date, run_id: str, accept: tuple[str, ...] = ()
) -> StageResult:
    """Silver -> every gold snapshot of `as_of`; each replaces only its own as_of partition."""
    with quality.batched_results(spark, cfg):  # one ops.dq_results commit for the stage's gates
        return _run(spark, cfg, as_of, run_id, accept)


def _run(spark: SparkSession, cfg: Config, as_of: date, run_id: str, accept: tuple[str, ...]) -> StageResult:
    rules = load_segment_rules(cfg.resolve(cfg.gold.segments_file))
    campaigns = load_campaigns(cfg.resolve(cfg.gold.campaigns_file), rules)
    result = StageResult(
        stage=STAGE, input_versions={name: lake.version(spark, cfg, name) for name in INPUTS}
    )
    missing = [name for name in INPUTS if result.input_versions[name] is None]
    if missing:
        raise lake.TableNotFound(
            f"gold reads {', '.join(missing)}, not in the lake at {cfg.resolve(cfg.lake.root)}: run the silver stage first"
        )
    orders = lake.read(spark, cfg, "silver.orders", version=result.input_versions["silver.orders"])
    lines = lake.read(spark, cfg, "silver.order_lines", version=result.input_versions["silver.order_lines"])
    customers = lake.read(spark, cfg, "silver.customers", version=result.input_versions["silver.customers"])
    lookback = cfg.gold.lookback_days

    # Partitioned by customer: the customer values, milestones, preferences and campaign outcomes all
    # group or window by customer, and then none of them shuffles the facts again.
    facts = order_facts(orders, lines, as_of).repartition("customer_key").cache()
    # Rows in: the orders up to as_of that gold reads (counting also fills the cache every branch uses).
    result.rows_in = facts.count()
    # The values feed four branches of the scoring plan (three score tables and the customers themselves).
    values = customer_values(facts, as_of, lookback).cache()
    current = customer_rfm(values, as_of, rules).cache()
    movers = None
    try:
        previous_as_of = _previous_as_of(spark, cfg, as_of)
        previous = _snapshot(spark, cfg, "gold.customer_rfm", previous_as_of) if previous_as_of else None
        if previous is None:
            previous = current.select("customer_key", "segment").limit(0)
        movers = segment_move_customers(current, previous, as_of, previous_as_of).cache()
        rfm = current.join(
            movers.where(F.col("segment").isNotNull()).select("customer_key", "previous_segment"),
            "customer_key",
            "left",
        )
        counts = {"customer_rfm": _write(spark, cfg, "customer_rfm", rfm, as_of, run_id, accept)}
        counts["segment_move_customers"] = _write(
            spark, cfg, "segment_move_customers", movers, as_of, run_id, accept
        )
        counts["segment_moves"] = _write(
            spark, cfg, "segment_moves", segment_moves(movers), as_of, run_id, accept
        )
        counts["channel_kpis"] = _write(
            spark, cfg, "channel_kpis", channel_kpis(facts, as_of, lookback), as_of, run_id, accept
        )

        preferences = customer_preferences(facts, as_of, lookback)
        recommendations = _recommendations(spark, cfg, as_of)
        targets = segment_targets(
            current, customers, preferences, campaigns, cfg.gold.control_share, as_of, recommendations
        )
        counts["segment_targets"] = _write(spark, cfg, "segment_targets", targets, as_of, run_id, accept)

        windows = campaign_windows(campaigns, as_of, cfg.gold.effect_window_days)
        stored_lists = _store_missing_lists(
            spark, cfg, facts, customers, rules, campaigns, windows, run_id, accept
        )
        effect = _campaign_effect(spark, cfg, facts, customers, rules, campaigns, windows, as_of)
        counts["campaign_effect"] = _write(spark, cfg, "campaign_effect", effect, as_of, run_id, accept)
    finally:
        if movers is not None:
            movers.unpersist()
        current.unpersist()
        values.unpersist()
        facts.unpersist()

    result.output_versions = {f"gold.{table}": lake.version(spark, cfg, f"gold.{table}") for table in counts}
    result.rows_out = sum(counts.values())
    result.details = {
        "rows": counts,
        "previous_as_of": previous_as_of,
        "recommendations_joined": recommendations is not None,
        "campaign_lists_stored": stored_lists,
    }
    return result


def _store_missing_lists(
    spark: SparkSession,
    cfg: Config,
    facts: DataFrame,
    customers: DataFrame,
    rules: SegmentRules,
    campaigns: tuple[Campaign, ...],
    windows: dict[str, tuple[date, date]],
    run_id: str,
    accept: tuple[str, ...],
) -> dict[str, int]:
    """The gold.segment_targets snapshot of each started campaign's list day that has none, as that day's run writes it.

    A campaign that started before the lake's first gold run (a backfill, a new deployment) has no stored list.
    Rebuilt on the first run that measures it and stored, it is what every later run reads: the list is
    scored once, not again on every run, and the effect is measured on the same list each day.
    Returns list day (ISO) -> rows stored.
    """
    stored = {}
    for start in sorted({start for start, _ in windows.values()}):
        list_as_of = start - timedelta(days=1)
        existing = _snapshot(spark, cfg, "gold.segment_targets", list_as_of)
        if existing is not None and not existing.isEmpty():
            continue
        targets = _lists_of_day(spark, cfg, facts, customers, rules, campaigns, list_as_of)
        stored[list_as_of.isoformat()] = _write(
            spark, cfg, "segment_targets", targets, list_as_of, run_id, accept
        )
    return stored


def _lists_of_day(
    spark: SparkSession,
    cfg: Config,
    facts: DataFrame,
    customers: DataFrame,
    rules: SegmentRules,
    campaigns: tuple[Campaign, ...],
    day: date,
) -> DataFrame:
    """The campaigns' lists of `day` rebuilt from the facts, as that day's run writes gold.segment_targets."""
    lookback = cfg.gold.lookback_days
    return segment_targets(
        customer_rfm(customer_values(facts, day, lookback), day, rules),
        customers,
        customer_preferences(facts, day, lookback),
        campaigns,
        cfg.gold.control_share,
        day,
        _recommendations(spark, cfg, day),
    )


def _campaign_effect(
    spark: SparkSession,
    cfg: Config,
    facts: DataFrame,
    customers: DataFrame,
    rules: SegmentRules,
    campaigns: tuple[Campaign, ...],
    windows: dict[str, tuple[date, date]],
    as_of: date,
) -> DataFrame:
    """Effect of every started campaign, on the list as it was the day before its start.

    The stored gold.segment_targets snapshot of that day is used when it exists (the list really sent);
    otherwise the list is rebuilt from silver with the same pure transforms (_store_missing_lists has stored
    it unless that day's snapshot exists without this campaign).
    """
    by_id = {c.campaign_id: c for c in campaigns}
    outcomes = []
    for campaign_id, (start, end) in windows.items():
        list_as_of = start - timedelta(days=1)
        stored = _snapshot(spark, cfg, "gold.segment_targets", list_as_of)
        if stored is not None and stored.where(F.col("campaign_id") == campaign_id).limit(1).count() == 1:
            targets = stored
        else:
            targets = _lists_of_day(spark, cfg, facts, customers, rules, (by_id[campaign_id],), list_as_of)
        listed = targets.where(F.col("campaign_id") == campaign_id).select(
            "campaign_id",
            "customer_key",
            "is_control",
            F.lit(start).alias("start_date"),
            F.lit(end).alias("end_date"),
        )
        effect = campaign_effect(campaign_outcomes(listed, facts)).select(
            "*",
            F.lit(list_as_of).alias("list_as_of"),
            F.lit(start).alias("start_date"),
            F.lit(end).alias("end_date"),
            F.lit((end - start).days + 1).alias("days_observed"),
            F.lit((end - start).days + 1 >= cfg.gold.effect_window_days).alias("window_complete"),
        )
        outcomes.append(effect)
    if not outcomes:
        return empty_frame(spark, GOLD["campaign_effect"])
    return union_all(outcomes).withColumn("as_of", F.lit(as_of))
