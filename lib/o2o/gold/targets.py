"""Marketing target lists per campaign (conf/campaigns.yaml) with preferred channel and store and a hashed control group."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyspark.sql.functions as F
import yaml
from pyspark.sql import Column, DataFrame, Window

from o2o.frames import empty_frame, union_all
from o2o.gold.segments import SegmentRules

SCHEMES = ("segment", "value_segment")
HASH_SPACE = 4294967296  # 16^8: the first 8 hex digits of the SHA-256


class CampaignConfigError(ValueError):
    """conf/campaigns.yaml is malformed or names a segment the rules do not have."""


@dataclass(frozen=True)
class Campaign:
    """A campaign: who is targeted (segments of one scheme), its control share and when it starts."""

    campaign_id: str
    name: str
    scheme: str
    segments: tuple[str, ...]
    control_share: float | None = None  # None: gold.control_share
    start_date: date | None = None  # None: a standing list, no effect measured


def parse_campaigns(data: dict, rules: SegmentRules, source: str = "campaigns") -> tuple[Campaign, ...]:
    """Campaigns from the parsed YAML; every segment must exist in `rules` and ids must be unique."""
    if not isinstance(data, dict) or not isinstance(data.get("campaigns"), list):
        raise CampaignConfigError(f"{source}: needs a list 'campaigns'")
    campaigns = []
    for i, item in enumerate(data["campaigns"]):
        where = f"{source}: campaigns[{i}]"
        if not isinstance(item, dict) or not item.get("campaign_id"):
            raise CampaignConfigError(f"{where}: each campaign needs a campaign_id")
        scheme = item.get("scheme", "segment")
        if scheme not in SCHEMES:
            raise CampaignConfigError(
                f"{where} ({item['campaign_id']}): scheme must be one of {', '.join(SCHEMES)}"
            )
        known = rules.segment_names() if scheme == "segment" else rules.value_names()
        segments = tuple(item.get("segments") or ())
        unknown = [s for s in segments if s not in known]
        if not segments or unknown:
            raise CampaignConfigError(
                f"{where} ({item['campaign_id']}): segments {unknown or '[]'} are not {scheme} names; known: {', '.join(known)}"
            )
        share = item.get("control_share")
        if share is not None and not (isinstance(share, (int, float)) and 0 <= share < 1):
            raise CampaignConfigError(
                f"{where} ({item['campaign_id']}): control_share must be in [0, 1), got {share!r}"
            )
        start = item.get("start_date")
        if start is not None and not isinstance(start, date):
            try:
                start = date.fromisoformat(str(start))
            except ValueError as exc:
                raise CampaignConfigError(
                    f"{where} ({item['campaign_id']}): start_date must be YYYY-MM-DD"
                ) from exc
        campaigns.append(
            Campaign(
                str(item["campaign_id"]),
                str(item.get("name", item["campaign_id"])),
                scheme,
                segments,
                share,
                start,
            )
        )
    ids = [c.campaign_id for c in campaigns]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CampaignConfigError(f"{source}: campaign_id used twice: {', '.join(duplicates)}")
    return tuple(campaigns)


def load_campaigns(path: str | Path, rules: SegmentRules) -> tuple[Campaign, ...]:
    """Load and validate conf/campaigns.yaml against the segment rules."""
    path = Path(path)
    if not path.exists():
        raise CampaignConfigError(f"{path}: campaigns file not found (gold.campaigns_file)")
    return parse_campaigns(yaml.safe_load(path.read_text(encoding="utf-8")), rules, str(path))


def control_flag(campaign_id: Column, member_or_customer: Column, control_share: Column) -> Column:
    """Deterministic holdout: first 8 hex digits of sha256('<campaign_id>|<member_id or customer_key>') / 16^8 < share."""
    draw = F.conv(
        F.substring(F.sha2(F.concat(campaign_id, F.lit("|"), member_or_customer), 256), 1, 8), 16, 10
    ).cast("double") / F.lit(float(HASH_SPACE))
    return draw < control_share


def customer_preferences(facts: DataFrame, as_of: date, lookback_days: int) -> DataFrame:
    """Preferred channel and store per customer: most purchase orders in the look-back window, ties to the latest.

    The store counts in-store sales and pick-ups. Out: customer_key, preferred_channel, preferred_store.
    """
    start = as_of - timedelta(days=lookback_days - 1)
    purchases = facts.where(
        F.col("is_purchase")
        & F.col("customer_key").isNotNull()
        & F.col("day").between(F.lit(start), F.lit(as_of))
    )

    def favourite(column: str, alias: str) -> DataFrame:
        ranked = Window.partitionBy("customer_key").orderBy(
            F.desc("orders"), F.desc("last_ts"), F.asc(column)
        )
        return (
            purchases.where(F.col(column).isNotNull())
            .groupBy("customer_key", column)
            .agg(F.count(F.lit(1)).alias("orders"), F.max("order_ts").alias("last_ts"))
            .withColumn("place", F.row_number().over(ranked))
            .where(F.col("place") == 1)
            .select("customer_key", F.col(column).alias(alias))
        )

    return favourite("channel", "preferred_channel").join(
        favourite("store_id", "preferred_store"), "customer_key", "left"
    )


def recommended_skus(recommendations: DataFrame) -> DataFrame:
    """Recommendations (customer_key, rank, sku) folded into one array per customer in rank order."""
    return recommendations.groupBy("customer_key").agg(
        F.transform(F.array_sort(F.collect_list(F.struct("rank", "sku"))), lambda item: item["sku"]).alias(
            "recommended_skus"
        )
    )


def segment_targets(
    rfm: DataFrame,
    customers: DataFrame,
    preferences: DataFrame,
    campaigns: tuple[Campaign, ...],
    control_share: float,
    as_of: date,
    recommendations: DataFrame | None = None,
) -> DataFrame:
    """One row per campaign and targeted customer: segment, preferred channel/store, is_control, recommended_skus.

    `rfm` holds customer_key, segment and value_segment; `customers` customer_key and member_id (the control
    hash uses the member id when there is one, so it matches the CRM); `recommendations` (optional) customer_key,
    rank, sku; without it recommended_skus is null.
    """
    chosen_lists = []
    for campaign in campaigns:
        share = campaign.control_share if campaign.control_share is not None else control_share
        chosen = rfm.where(F.col(campaign.scheme).isin(*campaign.segments)).select(
            F.lit(campaign.campaign_id).alias("campaign_id"),
            "customer_key",
            F.col(campaign.scheme).alias("segment"),
            F.lit(float(share)).alias("control_share"),
        )
        chosen_lists.append(chosen)
    lists = (
        union_all(chosen_lists)
        if chosen_lists
        else empty_frame(
            rfm.sparkSession, "campaign_id string, customer_key string, segment string, control_share double"
        )
    )
    targets = (
        lists.join(customers.select("customer_key", "member_id"), "customer_key", "left")
        .join(preferences, "customer_key", "left")
        .withColumn(
            "is_control",
            control_flag(
                F.col("campaign_id"),
                F.coalesce(F.col("member_id"), F.col("customer_key")),
                F.col("control_share"),
            ),
        )
    )
    if recommendations is not None:
        targets = targets.join(recommended_skus(recommendations), "customer_key", "left")
    else:
        targets = targets.withColumn("recommended_skus", F.lit(None).cast("array<string>"))
    return targets.select(
        F.lit(as_of).alias("as_of"),
        "campaign_id",
        "customer_key",
        "segment",
        "preferred_channel",
        "preferred_store",
        "is_control",
        "recommended_skus",
    )
