"""Orders and order lines: triage reasons, UTC conversion across DST, newer wins, pick-up in store once, returns."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from decimal import Decimal

from chispa import assert_df_equality

from o2o.contracts import SILVER, bronze_schema
from o2o.silver.orders import conform_orders, remap_customer_keys, triage_online_orders, triage_pos_sales

SALT = "test-salt"
ZONES = {
    "S001": "Asia/Shanghai",
    "S002": "Asia/Shanghai",
    "S007": "Australia/Sydney",
    "S008": "Europe/London",
}
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


def online(order_id="o1", status="paid", updated_ts="2026-06-10T10:00:00+08:00", **extra) -> dict:
    row = {
        "order_id": order_id,
        "channel": "web",
        "customer_id": "acc-1",
        "order_ts": "2026-06-10T09:00:00+08:00",
        "updated_ts": updated_ts,
        "status": status,
        "fulfilment": "delivery",
        "shipping_fee": 5.0,
        "currency": "cny",
        "items": [("sku-a", 2, 10.5), ("sku-b", 1, 3.0)],
    }
    return {**row, **extra}


def pos(receipt="R1", line_no=1, sold="2026-06-10 12:00:00", store="S001", **extra) -> dict:
    row = {
        "store_id": store,
        "receipt_no": receipt,
        "line_no": line_no,
        "sold_at_local": sold,
        "sku": "sku-a",
        "quantity": 1,
        "unit_price": 10.0,
    }
    return {**row, **extra}


def keys(spark, rows=(("online_account", "acc-1", "C1"), ("member", "M7", "C7"))):
    return spark.createDataFrame(
        list(rows), "namespace string, source_customer_id string, customer_key string"
    )


def no_orders(spark):
    return spark.createDataFrame([], SILVER["orders"])


def order_frame(spark, rows):
    return spark.createDataFrame(rows, SILVER["orders"])


def lines_frame(spark, rows):
    return spark.createDataFrame(rows, SILVER["order_lines"])


def reasons(triaged, key: str) -> dict:
    return {r[key]: r["_reason"] for r in triaged.select(key, "_reason").collect()}


def test_online_triage_gives_each_bad_row_its_reason(spark):
    rows = [
        online("ok"),
        online("neg", items=[("sku-a", 1, -1.0)]),
        online(None),
        online("chan", channel="fax"),
        online("future", order_ts="2026-08-01T00:00:00+08:00"),
        online("old", order_ts="1999-12-31T00:00:00Z"),
        online("unparsed", order_ts="yesterday"),
        online("qty", items=[("sku-a", 0, 1.0)]),
        online("store", fulfilment="pickup", pickup_store_id="S999"),
        online("stat", status="lost"),
    ]
    triaged = triage_online_orders(bronze(spark, "online_orders", rows), sorted(ZONES), LATEST)
    assert reasons(triaged, "order_id") == {
        "ok": None,
        "neg": "negative_price",
        None: "missing_key",
        "chan": "unknown_channel",
        "future": "impossible_timestamp",
        "old": "impossible_timestamp",
        "unparsed": "impossible_timestamp",
        "qty": "bad_quantity",
        "store": "unknown_store",
        "stat": "unknown_status",
    }


def test_malformed_line_is_quarantined_as_malformed(spark):
    rows = [{"_corrupt_record": "{not json", "_raw": "{not json"}]
    triaged = triage_online_orders(bronze(spark, "online_orders", rows), sorted(ZONES), LATEST)
    assert [r["_reason"] for r in triaged.collect()] == ["malformed"]


def test_newest_state_wins_by_event_time_not_arrival(spark):
    rows = [
        online(status="shipped", updated_ts="2026-06-11T10:00:00+08:00", _source_file="a"),
        online(
            status="paid", updated_ts="2026-06-10T10:00:00+08:00", _source_file="b"
        ),  # arrives later, older
        online(status="paid", updated_ts="2026-06-10T10:00:00+08:00", _source_file="c"),  # redelivered copy
    ]
    triaged = triage_online_orders(bronze(spark, "online_orders", rows), sorted(ZONES), LATEST)
    fate = {r["_source_file"]: r["_duplicate"] for r in triaged.collect()}
    assert fate["a"] is None
    assert sorted([fate["b"], fate["c"]]) == ["exact_duplicate", "superseded_status_update"]

    conformed = conform_orders(
        triaged,
        triage_pos_sales(bronze(spark, "pos_sales", []), ZONES, LATEST),
        keys(spark),
        no_orders(spark),
        SALT,
        "86",
        RUN,
    )
    expected = order_frame(
        spark,
        [
            (
                "o1",
                "web",
                None,
                "C1",
                utc(2026, 6, 10, 1),
                utc(2026, 6, 11, 2),
                "shipped",
                "delivery",
                "CNY",
                Decimal("24.00"),
                Decimal("5.00"),
                RUN,
            )
        ],
    )
    assert_df_equality(conformed.orders, expected, ignore_row_order=True, ignore_nullable=True)
    expected_lines = lines_frame(
        spark,
        [
            ("o1", 1, "sku-a", 2, Decimal("10.50"), Decimal("21.00"), None, RUN),
            ("o1", 2, "sku-b", 1, Decimal("3.00"), Decimal("3.00"), None, RUN),
        ],
    )
    assert_df_equality(conformed.order_lines, expected_lines, ignore_row_order=True, ignore_nullable=True)


def test_late_older_record_does_not_overwrite_newer_silver_row(spark):
    existing = order_frame(
        spark,
        [
            (
                "o1",
                "web",
                None,
                "C1",
                utc(2026, 6, 10, 1),
                utc(2026, 6, 12, 0),
                "delivered",
                "delivery",
                "CNY",
                Decimal("24.00"),
                Decimal("5.00"),
                "run-0",
            )
        ],
    )
    triaged = triage_online_orders(
        bronze(spark, "online_orders", [online(status="paid")]), sorted(ZONES), LATEST
    )
    conformed = conform_orders(
        triaged,
        triage_pos_sales(bronze(spark, "pos_sales", []), ZONES, LATEST),
        keys(spark),
        existing,
        SALT,
        "86",
        RUN,
    )
    rows = conformed.orders.collect()
    assert [(r["status"], r["updated_ts"]) for r in rows] == [("delivered", datetime(2026, 6, 12, 0))]
    assert conformed.order_lines.count() == 0
    assert [r["_duplicate"] for r in conformed.superseded.collect()] == ["superseded_status_update"]


def test_pos_local_time_to_utc_across_daylight_saving(spark):
    rows = [
        pos("L1", sold="2026-03-29 00:30:00", store="S008"),  # London, still GMT
        pos("L2", sold="2026-03-29 02:30:00", store="S008"),  # London, BST (+1)
        pos("Y1", sold="2026-04-04 12:00:00", store="S007"),  # Sydney, AEDT (+11)
        pos("Y2", sold="2026-04-06 12:00:00", store="S007"),  # Sydney, AEST (+10)
        pos("B1", sold="2026-06-10 12:00:00", store="S001"),  # Shanghai (+8)
    ]
    triaged = triage_pos_sales(bronze(spark, "pos_sales", rows), ZONES, LATEST)
    got = {r["receipt_no"]: r["_sold_at"] for r in triaged.collect()}
    assert got == {
        "L1": datetime(2026, 3, 29, 0, 30),
        "L2": datetime(2026, 3, 29, 1, 30),
        "Y1": datetime(2026, 4, 4, 1, 0),
        "Y2": datetime(2026, 4, 6, 2, 0),
        "B1": datetime(2026, 6, 10, 4, 0),
    }


def test_pos_triage_reasons(spark):
    rows = [
        pos("ok"),
        pos("neg", unit_price=-2.0),
        pos("zero", quantity=0),
        pos("store", store="S999"),
        pos("time", sold="10/06/2026 12:00"),
        pos(None),
    ]
    triaged = triage_pos_sales(bronze(spark, "pos_sales", rows), ZONES, LATEST)
    assert reasons(triaged, "receipt_no") == {
        "ok": None,
        "neg": "negative_price",
        "zero": "bad_quantity",
        "store": "unknown_store",
        "time": "impossible_timestamp",
        None: "missing_key",
    }


def test_pick_up_in_store_order_counts_once_with_pos_store(spark):
    online_rows = [
        online("o2", fulfilment="pickup", pickup_store_id="S002", updated_ts="2026-06-10T10:00:00+08:00")
    ]
    pos_rows = [
        pos(
            "R9",
            1,
            sold="2026-06-11 15:00:00",
            sku="sku-a",
            quantity=2,
            unit_price=10.5,
            online_order_id="o2",
        ),
        pos(
            "R9", 2, sold="2026-06-11 15:00:00", sku="sku-b", quantity=1, unit_price=3.0, online_order_id="o2"
        ),
    ]
    online_t = triage_online_orders(bronze(spark, "online_orders", online_rows), sorted(ZONES), LATEST)
    pos_t = triage_pos_sales(bronze(spark, "pos_sales", pos_rows), ZONES, LATEST)
    assert [r["_duplicate"] for r in pos_t.collect()] == ["bopis_pos_copy", "bopis_pos_copy"]

    conformed = conform_orders(online_t, pos_t, keys(spark), no_orders(spark), SALT, "86", RUN)
    expected = order_frame(
        spark,
        [
            (
                "o2",
                "web",
                "S001",
                "C1",
                utc(2026, 6, 10, 1),
                utc(2026, 6, 11, 7),
                "completed",
                "pick_up_in_store",
                "CNY",
                Decimal("24.00"),
                Decimal("5.00"),
                RUN,
            )
        ],
    )
    assert_df_equality(conformed.orders, expected, ignore_row_order=True, ignore_nullable=True)
    assert sorted((r["order_id"], r["line_no"]) for r in conformed.order_lines.collect()) == [
        ("o2", 1),
        ("o2", 2),
    ]


def test_pick_up_of_an_order_already_in_silver_updates_it(spark):
    existing = order_frame(
        spark,
        [
            (
                "o2",
                "app",
                "S002",
                "C1",
                utc(2026, 6, 10, 1),
                utc(2026, 6, 10, 2),
                "ready_for_pickup",
                "pick_up_in_store",
                "CNY",
                Decimal("24.00"),
                Decimal("0.00"),
                "run-0",
            )
        ],
    )
    pos_t = triage_pos_sales(bronze(spark, "pos_sales", [pos("R9", online_order_id="o2")]), ZONES, LATEST)
    online_t = triage_online_orders(bronze(spark, "online_orders", []), sorted(ZONES), LATEST)
    conformed = conform_orders(online_t, pos_t, keys(spark), existing, SALT, "86", RUN)
    expected = order_frame(
        spark,
        [
            (
                "o2",
                "app",
                "S001",
                "C1",
                utc(2026, 6, 10, 1),
                utc(2026, 6, 10, 4),
                "completed",
                "pick_up_in_store",
                "CNY",
                Decimal("24.00"),
                Decimal("0.00"),
                RUN,
            )
        ],
    )
    assert_df_equality(conformed.orders, expected, ignore_row_order=True, ignore_nullable=True)
    assert conformed.order_lines.count() == 0


def test_pos_receipt_returns_and_anonymous_sale(spark):
    phone_hash = hashlib.sha256(f"{SALT}|+8613812345678".encode()).hexdigest()
    pos_rows = [
        pos("R1", 1, member_card=" m 7 ", quantity=2, unit_price=4.0),
        pos("R1", 2, member_card=" m 7 ", sku="sku-b", quantity=1, unit_price=1.25),
        pos(
            "R2",
            1,
            sold="2026-06-10 18:00:00",
            quantity=-1,
            unit_price=4.0,
            phone="138-1234-5678",
            original_receipt_no="R1",
        ),
        pos("R3", 1, sold="2026-06-10 19:00:00"),
    ]
    pos_t = triage_pos_sales(bronze(spark, "pos_sales", pos_rows), ZONES, LATEST)
    online_t = triage_online_orders(bronze(spark, "online_orders", []), sorted(ZONES), LATEST)
    lookup = keys(spark, [("member", "M7", "C7"), ("phone", phone_hash, "CP")])
    conformed = conform_orders(online_t, pos_t, lookup, no_orders(spark), SALT, "86", RUN)
    expected = order_frame(
        spark,
        [
            (
                "S001-R1",
                "pos",
                "S001",
                "C7",
                utc(2026, 6, 10, 4),
                utc(2026, 6, 10, 4),
                "completed",
                "in_store",
                None,
                Decimal("9.25"),
                Decimal("0.00"),
                RUN,
            ),
            (
                "S001-R2",
                "pos",
                "S001",
                "CP",
                utc(2026, 6, 10, 10),
                utc(2026, 6, 10, 10),
                "completed",
                "in_store",
                None,
                Decimal("-4.00"),
                Decimal("0.00"),
                RUN,
            ),
            (
                "S001-R3",
                "pos",
                "S001",
                None,
                utc(2026, 6, 10, 11),
                utc(2026, 6, 10, 11),
                "completed",
                "in_store",
                None,
                Decimal("10.00"),
                Decimal("0.00"),
                RUN,
            ),
        ],
    )
    assert_df_equality(conformed.orders, expected, ignore_row_order=True, ignore_nullable=True)
    expected_lines = lines_frame(
        spark,
        [
            ("S001-R1", 1, "sku-a", 2, Decimal("4.00"), Decimal("8.00"), None, RUN),
            ("S001-R1", 2, "sku-b", 1, Decimal("1.25"), Decimal("1.25"), None, RUN),
            ("S001-R2", 1, "sku-a", -1, Decimal("4.00"), Decimal("-4.00"), "S001-R1", RUN),
            ("S001-R3", 1, "sku-a", 1, Decimal("10.00"), Decimal("10.00"), None, RUN),
        ],
    )
    assert_df_equality(conformed.order_lines, expected_lines, ignore_row_order=True, ignore_nullable=True)


def test_redelivered_pos_file_lines_are_exact_duplicates(spark):
    rows = [pos("R1", 1, _source_file="day1.csv"), pos("R1", 1, _source_file="day1-again.csv")]
    triaged = triage_pos_sales(bronze(spark, "pos_sales", rows), ZONES, LATEST)
    assert sorted(str(r["_duplicate"]) for r in triaged.collect()) == ["None", "exact_duplicate"]


def test_merged_customer_keys_are_remapped(spark):
    rows = spark.createDataFrame(
        [("o1", "C2"), ("o2", "C3"), ("o3", None)], "order_id string, customer_key string"
    )
    merges = spark.createDataFrame([("C2", "C1")], "merged_key string, surviving_key string")
    expected = spark.createDataFrame(
        [("o1", "C1"), ("o2", "C3"), ("o3", None)], "order_id string, customer_key string"
    )
    assert_df_equality(
        remap_customer_keys(rows, merges), expected, ignore_row_order=True, ignore_nullable=True
    )
