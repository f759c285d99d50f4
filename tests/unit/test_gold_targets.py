"""Target lists: campaign rules, preferred channel/store, and the hashed control group matching Python's hashlib."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality

from o2o.gold.rfm import order_facts
from o2o.gold.segments import load_segment_rules
from o2o.gold.targets import (
    CampaignConfigError,
    customer_preferences,
    load_campaigns,
    parse_campaigns,
    segment_targets,
)

CONF = Path(__file__).resolve().parents[2] / "conf"
RULES = load_segment_rules(CONF / "rfm_segments.yaml")


def _is_control(campaign_id: str, key: str, share: float) -> bool:
    """The generator's rule, written with hashlib."""
    return int(hashlib.sha256(f"{campaign_id}|{key}".encode()).hexdigest()[:8], 16) / 4294967296 < share


def test_shipped_campaigns_load_and_unknown_segments_are_rejected():
    campaigns = load_campaigns(CONF / "campaigns.yaml", RULES)
    assert {c.campaign_id for c in campaigns} >= {"winback_at_risk", "vip_care_champions"}

    with pytest.raises(
        CampaignConfigError, match=r"x: campaigns\[0\] \(bad\): segments \['Sleepers'\] are not segment names"
    ):
        parse_campaigns({"campaigns": [{"campaign_id": "bad", "segments": ["Sleepers"]}]}, RULES, "x")


def test_targets_follow_the_rules_with_preferences_and_hashed_control(spark):
    campaigns = parse_campaigns(
        {
            "campaigns": [
                {"campaign_id": "winback", "segments": ["At Risk"]},
                {"campaign_id": "vip", "segments": ["Champions"], "control_share": 0.5},
            ]
        },
        RULES,
    )
    rfm = spark.createDataFrame(
        [(f"c{i}", "At Risk" if i % 2 else "Champions", "General Value") for i in range(40)],
        "customer_key string, segment string, value_segment string",
    )
    customers = spark.createDataFrame(
        [(f"c{i}", f"M{i:04d}" if i % 3 else None) for i in range(40)],
        "customer_key string, member_id string",
    )
    orders = spark.createDataFrame(
        [
            ("o1", "pos", "S002", "c1", datetime(2026, 3, 1, 10), "completed", "in_store"),
            ("o2", "web", None, "c1", datetime(2026, 3, 2, 10), "delivered", "delivery"),
            ("o3", "web", "S005", "c1", datetime(2026, 3, 3, 10), "completed", "pick_up_in_store"),
        ],
        "order_id string, channel string, store_id string, customer_key string, order_ts timestamp, status string, fulfilment string",
    )
    lines = spark.createDataFrame(
        [(o, 1, "a", 1, Decimal("10.00")) for o in ("o1", "o2", "o3")],
        "order_id string, line_no int, sku string, quantity int, amount decimal(12,2)",
    )
    as_of = date(2026, 3, 31)
    preferences = customer_preferences(order_facts(orders, lines, as_of), as_of, 365)

    result = segment_targets(rfm, customers, preferences, campaigns, 0.2, as_of)

    expected_rows = []
    for i in range(40):
        key = f"M{i:04d}" if i % 3 else f"c{i}"
        campaign, share = ("winback", 0.2) if i % 2 else ("vip", 0.5)
        segment = "At Risk" if i % 2 else "Champions"
        # c1: web twice (latest on 03-03), pos once; stores S002 and S005 once each, S005 is the latest.
        channel, store = ("web", "S005") if i == 1 else (None, None)
        expected_rows.append(
            (as_of, campaign, f"c{i}", segment, channel, store, _is_control(campaign, key, share), None)
        )
    expected = spark.createDataFrame(
        expected_rows,
        "as_of date, campaign_id string, customer_key string, segment string, preferred_channel string, "
        "preferred_store string, is_control boolean, recommended_skus array<string>",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
    assert 0 < sum(row[6] for row in expected_rows) < 40


def test_recommendations_are_joined_in_rank_order(spark):
    campaigns = parse_campaigns({"campaigns": [{"campaign_id": "vip", "segments": ["Champions"]}]}, RULES)
    rfm = spark.createDataFrame(
        [("c1", "Champions", "General Value")], "customer_key string, segment string, value_segment string"
    )
    customers = spark.createDataFrame([("c1", "M1")], "customer_key string, member_id string")
    preferences = spark.createDataFrame(
        [], "customer_key string, preferred_channel string, preferred_store string"
    )
    recommendations = spark.createDataFrame(
        [("c1", 2, "sku-b"), ("c1", 1, "sku-a"), ("c1", 3, "sku-c"), ("c2", 1, "sku-z")],
        "customer_key string, rank int, sku string",
    )

    result = segment_targets(rfm, customers, preferences, campaigns, 0.2, date(2026, 3, 31), recommendations)

    assert [row["recommended_skus"] for row in result.collect()] == [["sku-a", "sku-b", "sku-c"]]
