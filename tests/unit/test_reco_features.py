"""Implicit confidence, time windows, dense ids and review ratings for ALS."""

import math
from datetime import date, datetime

import pytest
from chispa import assert_df_equality

from o2o.reco.features import (
    active_customers,
    at_reference,
    dense_index,
    implicit_confidence,
    implicit_confidences,
    purchases_between,
    review_ratings,
    windows,
)

EVENTS = "customer_key string, sku string, event_type string, event_ts timestamp, quantity int, rating int"
REFERENCE = datetime(2026, 6, 11)


def test_windows_end_the_day_after_as_of():
    w = windows(date(2026, 6, 30), test_days=14, validation_days=7)

    assert w.end == datetime(2026, 7, 1)
    assert w.test_start == datetime(2026, 6, 17)
    assert w.validation_start == datetime(2026, 6, 10)


def test_confidence_weights_quantity_and_recency(spark):
    events = spark.createDataFrame(
        [
            ("c1", "s1", "view", datetime(2026, 6, 1), None, None),  # 10 days old: half weight
            ("c1", "s1", "purchase", datetime(2026, 6, 10), 2, None),  # 1 day old, two units
            ("c1", "s2", "purchase", datetime(2026, 6, 9), -1, None),  # a return adds nothing
            ("c1", "s2", "share", datetime(2026, 6, 9), None, None),  # no weight configured
            ("c2", "s1", "view", datetime(2026, 6, 12), None, None),  # after the reference
            ("c2", "s3", "view", datetime(2026, 6, 10, 12), None, None),  # half a day old
        ],
        EVENTS,
    )

    result = implicit_confidence(events, REFERENCE, {"purchase": 5.0, "view": 1.0}, half_life_days=10.0)

    rows = {(r["customer_key"], r["sku"]): r for r in result.collect()}
    assert set(rows) == {("c1", "s1"), ("c2", "s3")}
    assert rows[("c1", "s1")]["confidence"] == pytest.approx(0.5 + 5.0 * (1 + math.log(2)) * 0.5**0.1)
    assert rows[("c1", "s1")]["events"] == 2
    assert rows[("c2", "s3")]["confidence"] == pytest.approx(0.5**0.05)


def test_confidences_at_several_references_decay_to_each_one(spark):
    events = spark.createDataFrame(
        [
            ("c1", "s1", "view", datetime(2026, 6, 1), None, None),  # before both references
            ("c1", "s1", "purchase", datetime(2026, 6, 11), 1, None),  # before the second only
            ("c1", "s2", "view", datetime(2026, 6, 15), None, None),  # after both: not counted
            ("c2", "s1", "view", datetime(2026, 6, 6), None, None),  # before both
            ("c2", "s3", "purchase", datetime(2026, 6, 10), 0, None),  # zero units: not counted
        ],
        EVENTS,
    )
    first, second = datetime(2026, 6, 11), datetime(2026, 6, 12)

    both = implicit_confidences(
        events, [first, second], {"purchase": 5.0, "view": 1.0}, half_life_days=10.0, min_interactions=2
    )

    rows = {(r["customer_key"], r["sku"]): r for r in both.collect()}
    assert set(rows) == {("c1", "s1"), ("c2", "s1")}
    # c1's view is 10 days before the first reference and 11 before the second; the purchase 1 day before it.
    assert rows[("c1", "s1")]["confidence_0"] == pytest.approx(0.5)
    assert rows[("c1", "s1")]["confidence_1"] == pytest.approx(0.5**1.1 + 5.0 * 0.5**0.1)
    assert (rows[("c1", "s1")]["events_0"], rows[("c1", "s1")]["events_1"]) == (1, 2)
    assert rows[("c2", "s1")]["confidence_0"] == pytest.approx(0.5**0.5)
    assert rows[("c2", "s1")]["confidence_1"] == pytest.approx(0.5**0.6)
    # Two events are needed to train: c1 has them before the second reference only, c2 never.
    trainable = {key: (r["trainable_0"], r["trainable_1"]) for key, r in rows.items()}
    assert trainable == {("c1", "s1"): (False, True), ("c2", "s1"): (False, False)}
    assert [
        (r["customer_key"], r["events"]) for r in at_reference(both, 1, trainable_only=True).collect()
    ] == [("c1", 2)]
    assert at_reference(both, 0, trainable_only=True).count() == 0
    assert sorted(r["customer_key"] for r in at_reference(both, 0).collect()) == ["c1", "c2"]


def test_active_customers_drops_thin_histories(spark):
    confidence = spark.createDataFrame(
        [("c1", "s1", 1.0, 2), ("c1", "s2", 1.0, 1), ("c2", "s1", 1.0, 2)],
        "customer_key string, sku string, confidence double, events long",
    )

    kept = active_customers(confidence, min_interactions=3)

    assert sorted(r["customer_key"] for r in kept.collect()) == ["c1", "c1"]


def test_dense_index_numbers_sorted_keys_from_zero_across_partitions(spark):
    shuffled = [f"k{i:02d}" for i in (17, 3, 44, 0, 29, 3, 11, 38, 5, 22, 49, 1)] + [None]
    keys = spark.createDataFrame([(k,) for k in shuffled], "sku string").repartition(3)

    result = dense_index(keys, "sku", "item")

    distinct_sorted = sorted({k for k in shuffled if k is not None})
    expected = spark.createDataFrame(
        list(zip(distinct_sorted, range(len(distinct_sorted)), strict=True)), "sku string, item int"
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_purchases_between_is_half_open(spark):
    events = spark.createDataFrame(
        [
            ("c1", "s1", "purchase", datetime(2026, 6, 10), 1, None),
            ("c1", "s1", "purchase", datetime(2026, 6, 10, 5), 1, None),  # same pair twice
            ("c1", "s2", "purchase", datetime(2026, 6, 17), 1, None),  # at the end: excluded
            ("c1", "s3", "view", datetime(2026, 6, 11), None, None),
            ("c2", "s4", "purchase", datetime(2026, 6, 12), -1, None),  # a return
        ],
        EVENTS,
    )

    result = purchases_between(events, datetime(2026, 6, 10), datetime(2026, 6, 17))

    expected = spark.createDataFrame([("c1", "s1")], "customer_key string, sku string")
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_review_ratings_keep_the_latest_valid_rating(spark):
    events = spark.createDataFrame(
        [
            ("c1", "s1", "review", datetime(2026, 6, 1), None, 2),
            ("c1", "s1", "review", datetime(2026, 6, 5), None, 4),
            ("c1", "s2", "review", datetime(2026, 6, 5), None, 9),  # out of range
            ("c2", "s1", "purchase", datetime(2026, 6, 5), 1, None),
        ],
        EVENTS,
    )

    result = review_ratings(events)

    expected = spark.createDataFrame(
        [("c1", "s1", 4.0, datetime(2026, 6, 5))],
        "customer_key string, sku string, rating double, event_ts timestamp",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
