"""Interactions: clickstream vocabularies and times, reviews 1-5, purchases from order lines, anonymous left out."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from o2o import lake
from o2o.contracts import SILVER, SILVER_DELETION_VECTORS, bronze_schema
from o2o.silver import stage as silver_stage
from o2o.silver.interactions import (
    conform_interactions,
    triage_app_clickstream,
    triage_mini_program_clickstream,
    triage_reviews,
)

LATEST = datetime(2026, 7, 2, 12, 0)
RUN = "run-1"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def bronze(spark, feed: str, rows: list[dict]):
    schema = bronze_schema(feed)
    lineage = {"_source_file": "f1", "_ingested_at": utc(2026, 7, 1), "_run_id": "bronze-1"}
    return spark.createDataFrame(
        [tuple({**lineage, **row}.get(f.name) for f in schema.fields) for row in rows], schema
    )


def lookup(spark):
    return spark.createDataFrame(
        [
            ("online_account", "acc-1", "C1"),
            ("app_device", "dev-9", "D9"),
            ("mini_program", "open-5", "C5"),
        ],
        "namespace string, source_customer_id string, customer_key string",
    )


def empty(spark, table: str):
    return spark.createDataFrame([], SILVER[table])


def test_clicks_reviews_and_purchases_become_one_stream(spark):
    app = triage_app_clickstream(
        bronze(
            spark,
            "app_clickstream",
            [
                {
                    "event_id": "e1",
                    "event_type": "view",
                    "user_id": "acc-1",
                    "device_id": "dev-9",
                    "sku": "A",
                    "event_ts": "2026-06-10T01:00:00Z",
                },
                {
                    "event_id": "e2",
                    "event_type": "Cart",
                    "user_id": None,
                    "device_id": "dev-9",
                    "sku": "B",
                    "event_ts": "2026-06-10T02:00:00Z",
                },
                {
                    "event_id": "e3",
                    "event_type": "share",
                    "user_id": "acc-1",
                    "sku": "B",
                    "event_ts": "2026-06-10T02:00:00Z",
                },
            ],
        ),
        LATEST,
    )
    mini = triage_mini_program_clickstream(
        bronze(
            spark,
            "mini_program_clickstream",
            [
                {"log_id": "l1", "openid": "open-5", "action": "browse", "item_id": "A", "ts": 1781053200000},
                {
                    "log_id": "l2",
                    "openid": "open-5",
                    "action": "add_cart",
                    "item_id": "A",
                    "ts": 1781053260000,
                },
                {
                    "log_id": "l3",
                    "openid": "open-5",
                    "action": "collect",
                    "item_id": "C",
                    "ts": 1781053320000,
                },
                {
                    "log_id": "l4",
                    "openid": "open-5",
                    "action": "collect",
                    "item_id": "C",
                    "ts": 4102444800000,
                },  # 2100
            ],
        ),
        LATEST,
    )
    reviews = triage_reviews(
        bronze(
            spark,
            "reviews",
            [
                {
                    "review_id": "r1",
                    "channel": "web",
                    "customer_id": "acc-1",
                    "sku": "A",
                    "rating": 5,
                    "review_ts": "2026-06-12T10:00:00+08:00",
                },
                {
                    "review_id": "r2",
                    "channel": "web",
                    "customer_id": "acc-1",
                    "sku": "B",
                    "rating": 6,
                    "review_ts": "2026-06-12T10:00:00+08:00",
                },
            ],
        ),
        LATEST,
    )
    assert {r["event_id"]: r["_reason"] for r in app.collect()} == {
        "e1": None,
        "e2": None,
        "e3": "unknown_event",
    }
    assert {r["log_id"]: r["_reason"] for r in mini.collect()} == {
        "l1": None,
        "l2": None,
        "l3": None,
        "l4": "impossible_timestamp",
    }
    assert {r["review_id"]: r["_reason"] for r in reviews.collect()} == {"r1": None, "r2": "bad_rating"}

    orders = spark.createDataFrame(
        [
            (
                "o1",
                "web",
                None,
                "C1",
                utc(2026, 6, 11),
                utc(2026, 6, 11),
                "paid",
                "delivery",
                "CNY",
                Decimal("5"),
                Decimal("0"),
                RUN,
            ),
            (
                "S1-R1",
                "pos",
                "S1",
                None,
                utc(2026, 6, 11),
                utc(2026, 6, 11),
                "completed",
                "in_store",
                None,
                Decimal("5"),
                Decimal("0"),
                RUN,
            ),
        ],
        SILVER["orders"],
    )
    lines = spark.createDataFrame(
        [
            ("o1", 1, "A", 2, Decimal("1.00"), Decimal("2.00"), None, RUN),
            (
                "o1",
                2,
                "A",
                1,
                Decimal("1.00"),
                Decimal("1.00"),
                None,
                RUN,
            ),  # same sku twice: one purchase of 3
            ("o1", 3, "B", -1, Decimal("1.00"), Decimal("-1.00"), None, RUN),  # a return is no purchase
            ("S1-R1", 1, "A", 1, Decimal("5.00"), Decimal("5.00"), None, RUN),  # anonymous
        ],
        SILVER["order_lines"],
    )
    result = conform_interactions(app, mini, reviews, orders, lines, lookup(spark), RUN)
    expected = spark.createDataFrame(
        [
            ("C1", "A", "view", utc(2026, 6, 10, 1), "app", None, None, RUN),
            ("D9", "B", "cart", utc(2026, 6, 10, 2), "app", None, None, RUN),
            ("C5", "A", "view", utc(2026, 6, 10, 1), "mini_program", None, None, RUN),
            ("C5", "A", "cart", utc(2026, 6, 10, 1, 1), "mini_program", None, None, RUN),
            ("C5", "C", "favourite", utc(2026, 6, 10, 1, 2), "mini_program", None, None, RUN),
            ("C1", "A", "review", utc(2026, 6, 12, 2), "web", None, 5, RUN),
            ("C1", "A", "purchase", utc(2026, 6, 11), "web", 3, None, RUN),
        ],
        SILVER["interactions"],
    )
    assert_df_equality(result.interactions, expected, ignore_row_order=True, ignore_nullable=True)
    assert [tuple(r) for r in result.anonymous_purchase_lines.collect()] == [("S1-R1", 1)]


def test_same_interaction_twice_and_unknown_customer_get_late_fates(spark):
    app = triage_app_clickstream(
        bronze(
            spark,
            "app_clickstream",
            [
                {
                    "event_id": "e1",
                    "event_type": "view",
                    "user_id": "acc-1",
                    "sku": "A",
                    "event_ts": "2026-06-10T01:00:00Z",
                },
                {
                    "event_id": "e2",
                    "event_type": "view",
                    "user_id": "acc-1",
                    "sku": "A",
                    "event_ts": "2026-06-10T01:00:00Z",
                },
                {
                    "event_id": "e3",
                    "event_type": "view",
                    "user_id": "stranger",
                    "sku": "A",
                    "event_ts": "2026-06-10T01:00:00Z",
                },
            ],
        ),
        LATEST,
    )
    none_mini = triage_mini_program_clickstream(bronze(spark, "mini_program_clickstream", []), LATEST)
    none_reviews = triage_reviews(bronze(spark, "reviews", []), LATEST)
    result = conform_interactions(
        app, none_mini, none_reviews, empty(spark, "orders"), empty(spark, "order_lines"), lookup(spark), RUN
    )
    assert result.interactions.count() == 1
    ids = {r["_record_id"]: r["event_id"] for r in app.collect()}
    fates = sorted(
        (ids[r["_record_id"]], r["_reason"], r["_duplicate"])
        for r in result.fates["app_clickstream"].collect()
    )
    assert fates[1] == ("e3", "unknown_customer", None)
    assert fates[0][0] in ("e1", "e2") and fates[0][1:] == (None, "same_interaction")


def test_triage_shuffles_the_rows_once_and_numbers_repeated_lines(spark):
    line = {
        "event_id": "e1",
        "event_type": "view",
        "user_id": "acc-1",
        "sku": "A",
        "event_ts": "2026-06-10T01:00:00Z",
        "_raw": '{"event_id": "e1"}',
    }
    other = {**line, "event_id": "e2", "_raw": '{"event_id": "e2"}'}
    triaged = triage_app_clickstream(bronze(spark, "app_clickstream", [line, line, other]), LATEST)

    # The record-id window and both duplicate windows are keyed by event_id: one shuffle serves all three.
    plan = triaged._jdf.queryExecution().executedPlan().toString()
    assert plan.count("Exchange ") == 1, plan
    rows = sorted(
        (r["event_id"], r["_duplicate"] or "") for r in triaged.select("event_id", "_duplicate").collect()
    )
    assert rows == [("e1", ""), ("e1", "exact_duplicate"), ("e2", "")]
    assert triaged.select("_record_id").distinct().count() == 3  # the same line twice: two record ids


@pytest.mark.parametrize("keys_named_at_most", [silver_stage.MOVE_KEYS_NAMED_AT_MOST, 1])
def test_merged_persons_interactions_move_to_the_surviving_key_in_one_commit(
    spark, cfg, monkeypatch, keys_named_at_most
):
    # Two persons (C2 merged into C1): named in the MERGE condition by default, not above the limit of 1.
    monkeypatch.setattr(silver_stage, "MOVE_KEYS_NAMED_AT_MOST", keys_named_at_most)
    # Made as the stage makes it: with deletion vectors, so the move copies no other row of the file.
    lake.ensure_table(
        spark,
        cfg,
        "silver.interactions",
        SILVER["interactions"],
        deletion_vectors="interactions" in SILVER_DELETION_VECTORS,
    )
    at = datetime(2026, 6, 1, 9)
    lake.append(
        spark.createDataFrame(
            [
                ("C1", "s1", "view", at, "app", None, None, "r1"),
                ("C2", "s1", "view", at, "app", None, None, "r1"),  # the same event under the other key
                ("C2", "s2", "purchase", at, "pos", 2, None, "r1"),
                ("C3", "s3", "view", at, "web", None, None, "r1"),  # not merged: untouched
            ],
            SILVER["interactions"],
        ),
        cfg,
        "silver.interactions",
    )
    merges = spark.createDataFrame([("C2", "C1")], "merged_key string, surviving_key string")

    silver_stage._move_interactions(spark, cfg, merges)

    assert sorted(tuple(r) for r in lake.read(spark, cfg, "silver.interactions").collect()) == [
        ("C1", "s1", "view", at, "app", None, None, "r1"),
        ("C1", "s2", "purchase", at, "pos", 2, None, "r1"),
        ("C3", "s3", "view", at, "web", None, None, "r1"),
    ]
    assert [
        r["operation"] for r in lake.history(spark, cfg, "silver.interactions").orderBy("version").collect()
    ] == ["CREATE TABLE", "WRITE", "MERGE"]
    commit = lake.history(spark, cfg, "silver.interactions", 1).head()
    condition = commit["operationParameters"]["predicate"]
    named = re.search(r"customer_key#\d+ IN(SET)? \(?C1, ?C2\b", condition) is not None
    assert named == (keys_named_at_most >= 2), condition
    move = commit["operationMetrics"]
    assert (move["numTargetRowsCopied"], move["numTargetRowsDeleted"], move["numTargetRowsInserted"]) == (
        "0",  # C3's row (and C1's) stay where they are; without deletion vectors their file is rewritten
        "2",
        "1",
    )

    silver_stage._move_interactions(spark, cfg, merges)  # the rerun of a run killed after the move: no change
    assert lake.version(spark, cfg, "silver.interactions") == 2


def test_merged_persons_other_orders_are_re_pointed_in_the_increments_merge(spark, cfg):
    def order(order_id, customer_key, status, run):
        at = datetime(2026, 6, 1, 9)
        money = Decimal("10.00")
        return (order_id, "web", None, customer_key, at, at, status, "delivery", "CNY", money, money, run)

    lake.ensure_table(spark, cfg, "silver.orders", SILVER["orders"], change_feed=True)
    lake.append(
        spark.createDataFrame(
            [
                order("o1", "C2", "paid", "r1"),
                order("o2", "C2", "paid", "r1"),
                order("o3", "C3", "paid", "r1"),
            ],
            SILVER["orders"],
        ),
        cfg,
        "silver.orders",
    )
    merges = spark.createDataFrame([("C2", "C1")], "merged_key string, surviving_key string")
    # This run's increment holds o2 again (shipped), already under the surviving key.
    increment = spark.createDataFrame([order("o2", "C1", "shipped", "r2")], SILVER["orders"])

    moved = silver_stage._moved_orders(spark, cfg, merges, increment)
    assert_df_equality(
        moved,
        spark.createDataFrame([order("o1", "C1", "paid", "r1")], SILVER["orders"]),
        ignore_row_order=True,
    )
    lake.merge_upsert(increment.unionByName(moved), cfg, "silver.orders", ("order_id",))

    assert sorted(
        (r["order_id"], r["customer_key"], r["status"])
        for r in lake.read(spark, cfg, "silver.orders").collect()
    ) == [
        ("o1", "C1", "paid"),
        ("o2", "C1", "shipped"),
        ("o3", "C3", "paid"),
    ]
    assert lake.version(spark, cfg, "silver.orders") == 2  # created, appended, one MERGE
    no_merges = spark.createDataFrame([], "merged_key string, surviving_key string")
    assert silver_stage._moved_orders(spark, cfg, no_merges, increment) is None
