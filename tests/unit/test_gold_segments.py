"""Segment rules: load-time gap/overlap checks, one segment per customer, and segment moves between snapshots."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality

from o2o.gold.segments import (
    SegmentRuleError,
    assign_segments,
    load_segment_rules,
    parse_segment_rules,
    segment_move_customers,
    segment_moves,
)

CONF = Path(__file__).resolve().parents[2] / "conf" / "rfm_segments.yaml"


def _shipped() -> dict:
    return yaml.safe_load(CONF.read_text(encoding="utf-8"))


def test_shipped_rules_cover_every_cell_once():
    rules = load_segment_rules(CONF)

    assert len(rules.score_segments) == 11 and len(rules.value_classes) == 8
    for r, fm in itertools.product(range(1, 6), range(1, 6)):
        assert sum(s.matches(r, fm) for s in rules.score_segments) == 1


def test_a_gap_is_rejected_naming_the_cell():
    data = _shipped()
    data["score_segments"]["segments"] = [s for s in data["score_segments"]["segments"] if s["name"] != "New"]

    with pytest.raises(SegmentRuleError, match=r"gap: score cell r_score=5, fm_score=1 matches no segment"):
        parse_segment_rules(data, "rules.yaml")


def test_an_overlap_is_rejected_naming_the_cell_and_segments():
    data = _shipped()
    data["score_segments"]["segments"][0]["fm"] = [3, 5]  # Champions now also claims r=5, fm=3

    with pytest.raises(
        SegmentRuleError,
        match=r"overlap: score cell r_score=5, fm_score=3 matches Champions, Potential Loyalist",
    ):
        parse_segment_rules(data, "rules.yaml")


def test_a_value_model_gap_is_rejected():
    data = _shipped()
    data["value_segments"]["classes"] = data["value_segments"]["classes"][:-1]

    with pytest.raises(SegmentRuleError, match=r"gap: value cell r=low, f=low, m=low"):
        parse_segment_rules(data, "rules.yaml")


def test_every_score_combination_gets_exactly_one_segment(spark):
    rules = load_segment_rules(CONF)
    rows = [
        (f"{r}{f}{m}", r, f, m, (f + m + 1) // 2, r > 2, f > 2, m > 2)
        for r, f, m in itertools.product(range(1, 6), repeat=3)
    ]
    scored = spark.createDataFrame(
        rows,
        "customer_key string, r_score int, f_score int, m_score int, fm_score int, r_high boolean, f_high boolean, m_high boolean",
    )

    result = assign_segments(scored, rules)

    assert result.where("segment IS NULL OR value_segment IS NULL OR value_segment_cn IS NULL").count() == 0
    assert result.select("customer_key").distinct().count() == 125
    picked = {
        row["customer_key"]: (row["segment"], row["value_segment_cn"]) for row in result.collect()
    }  # 125 rows
    assert picked["555"] == ("Champions", "重要价值客户")
    assert picked["111"] == ("Lost", "一般挽留客户")
    assert picked["155"] == ("Can't Lose Them", "重要保持客户")
    assert picked["511"] == ("New", "一般发展客户")


def test_segment_moves_between_two_snapshots(spark):
    previous = spark.createDataFrame(
        [("c1", "Champions"), ("c2", "Loyal"), ("c3", "At Risk"), ("c4", "Loyal")],
        "customer_key string, segment string",
    )
    current = spark.createDataFrame(
        [("c1", "Champions"), ("c2", "At Risk"), ("c4", "At Risk"), ("c5", "New")],
        "customer_key string, segment string",
    )
    as_of, before = date(2026, 4, 30), date(2026, 3, 31)

    movers = segment_move_customers(current, previous, as_of, before)

    schema = "as_of date, previous_as_of date, customer_key string, previous_segment string, segment string"
    assert_df_equality(
        movers,
        spark.createDataFrame(
            [
                (as_of, before, "c1", "Champions", "Champions"),
                (as_of, before, "c2", "Loyal", "At Risk"),
                (as_of, before, "c3", "At Risk", None),
                (as_of, before, "c4", "Loyal", "At Risk"),
                (as_of, before, "c5", None, "New"),
            ],
            schema,
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_df_equality(
        segment_moves(movers),
        spark.createDataFrame(
            [
                (as_of, before, "Champions", "Champions", 1),
                (as_of, before, "Loyal", "At Risk", 2),
                (as_of, before, "At Risk", None, 1),
                (as_of, before, None, "New", 1),
            ],
            "as_of date, previous_as_of date, previous_segment string, segment string, customers long",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
