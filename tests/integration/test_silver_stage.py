"""Silver stage on a temp lake: reconciliation, idempotent rerun, newer wins and stable keys across runs, BOPIS once, no PII."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

import pyspark.sql.functions as F

from o2o import lake
from o2o.contracts import FEEDS, SILVER, bronze_schema, bronze_table
from o2o.silver import stage

AS_OF = date(2026, 6, 12)
# Not inside a longer token: a 64-hex hash often holds a run of 11 digits.
RAW_PHONE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?![0-9A-Za-z])")
RAW_EMAIL = re.compile(r"[^@\s\"]+@[^@\s\"]+\.[a-z]{2,}", re.IGNORECASE)


def append_bronze(spark, cfg, feed: str, rows: list[dict], source_file: str) -> None:
    schema = bronze_schema(feed)
    lineage = {
        "_source_file": source_file,
        "_ingested_at": datetime(2026, 6, 12, tzinfo=timezone.utc),
        "_run_id": "b",
    }
    df = spark.createDataFrame(
        [tuple({**lineage, **row}.get(f.name) for f in schema.fields) for row in rows], schema
    )
    lake.ensure_table(spark, cfg, bronze_table(feed), schema, change_feed=True)
    lake.append(df, cfg, bronze_table(feed))


# o2: an app order to pick up in store (its POS copy, receipt R9, names it); a new account, e-mail only.
O2_PICK_UP = {
    "channel": "app",
    "customer_id": "acc-2",
    "phone": None,
    "email": "bo@example.com",
    "fulfilment": "pickup",
    "pickup_store_id": "S002",
}


def online(order_id, status, updated_ts, **extra) -> dict:
    row = {
        "order_id": order_id,
        "channel": "web",
        "customer_id": "acc-1",
        "phone": "138 1234 5678",
        "email": "Ann@Example.com",
        "order_ts": "2026-06-10T09:00:00+08:00",
        "updated_ts": updated_ts,
        "status": status,
        "fulfilment": "delivery",
        "shipping_fee": 5.0,
        "currency": "CNY",
        "items": [("sku-a", 1, 10.0)],
    }
    return {**row, **extra}


def first_increment(spark, cfg) -> None:
    append_bronze(
        spark,
        cfg,
        "online_orders",
        [
            online("o1", "paid", "2026-06-10T10:00:00+08:00"),
            online("o2", "paid", "2026-06-10T11:00:00+08:00", **O2_PICK_UP),
            online("o3", "paid", "2026-06-10T11:00:00+08:00", items=[("sku-a", 1, -3.0)]),
            {"_corrupt_record": '{"order_id": "o4", ', "_raw": '{"order_id": "o4", '},
        ],
        "online_orders/2026-06-10/a.jsonl",
    )
    pos_base = {"store_id": "S001", "sold_at_local": "2026-06-11 15:00:00", "unit_price": 10.0, "quantity": 1}
    append_bronze(
        spark,
        cfg,
        "pos_sales",
        [
            {
                **pos_base,
                "receipt_no": "R1",
                "line_no": 1,
                "sku": "sku-a",
                "member_card": "m1",
                "phone": "13812345678",
            },
            {
                **pos_base,
                "receipt_no": "R1",
                "line_no": 2,
                "sku": "sku-x",
                "member_card": "m1",
                "phone": "13812345678",
            },
            {**pos_base, "receipt_no": "R9", "line_no": 1, "sku": "sku-a", "online_order_id": "o2"},
            {**pos_base, "receipt_no": "R3", "line_no": 1, "sku": "sku-b"},
        ],
        "pos_sales/2026-06-11/S001.csv",
    )
    append_bronze(
        spark,
        cfg,
        "crm_members",
        [
            {
                "member_id": "M1",
                "phone": "+86 138-1234-5678",
                "email": "ann@example.com",
                "city": "Shanghai",
                "register_channel": "pos",
                "registered_at": "2026-01-05",
            }
        ],
        "crm_members/2026-06-10/m.csv",
    )
    append_bronze(
        spark,
        cfg,
        "app_clickstream",
        [
            {
                "event_id": "e1",
                "event_type": "view",
                "user_id": "acc-1",
                "device_id": "d1",
                "sku": "sku-b",
                "event_ts": "2026-06-09T08:00:00Z",
            }
        ],
        "app_clickstream/2026-06-09/e.jsonl",
    )
    append_bronze(
        spark,
        cfg,
        "mini_program_clickstream",
        [
            {
                "log_id": "l1",
                "openid": "open-5",
                "bound_phone": "139 0000 1111",
                "action": "browse",
                "item_id": "sku-a",
                "ts": 1781053200000,
            }
        ],
        "mini_program_clickstream/2026-06-10/l.jsonl",
    )
    append_bronze(
        spark,
        cfg,
        "reviews",
        [
            {
                "review_id": "r1",
                "channel": "web",
                "customer_id": "acc-1",
                "order_id": "o1",
                "sku": "sku-a",
                "rating": 4,
                "review_ts": "2026-06-11T10:00:00+08:00",
                "review_text": "call me on 13812345678",
            }
        ],
        "reviews/2026-06-11/r.jsonl",
    )
    append_bronze(
        spark,
        cfg,
        "product_catalogue",
        [
            {"sku": "sku-a", "product_name": "Tea", "category": "food", "brand": "B", "list_price": 10.0},
            {"sku": "sku-b", "product_name": "Cup", "category": "home", "brand": "B", "list_price": 4.0},
        ],
        "product_catalogue/2026-06-10/c.csv",
    )


def versions(spark, cfg) -> dict:
    names = [f"silver.{t}" for t in SILVER] + [stage.WATERMARKS] + [bronze_table(f) for f in FEEDS]
    return {name: lake.version(spark, cfg, name) for name in names}


def identity_keys(spark, cfg) -> dict:
    """(namespace, source id) -> customer_key of every row of silver.customer_identity."""
    rows = lake.read(spark, cfg, "silver.customer_identity").collect()
    return {(r["channel"], r["source_customer_id"]): r["customer_key"] for r in rows}


def order(spark, cfg, order_id: str):
    return lake.read(spark, cfg, "silver.orders").where(F.col("order_id") == order_id).collect()


def assert_no_raw_pii(spark, cfg) -> None:
    for table in SILVER:
        name = f"silver.{table}"
        if not lake.exists(spark, cfg, name):
            continue
        df = lake.read(spark, cfg, name)
        assert not {"phone", "email", "bound_phone"} & set(df.columns), f"{name} has a raw PII column"
        strings = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        # Test tables hold a handful of rows: collecting them is bounded.
        for row in df.select(*strings).collect():
            for value in row:
                if value is None:
                    continue
                assert not RAW_PHONE.search(value), f"raw phone in {name}: {value}"
                assert not RAW_EMAIL.search(value), f"raw email in {name}: {value}"


def test_silver_stage_end_to_end(spark, cfg, capsys):
    first_increment(spark, cfg)
    result = stage.run(spark, cfg, AS_OF, "silver-1")
    report = result.details["reconciliation"]

    assert all(entry["balanced"] for entry in report.values()), report
    assert report["online_orders"] == {
        "bronze_rows": 4,
        "silver_rows": 2,
        "quarantined": {"negative_price": 1, "malformed": 1},
        "duplicates": {},
        "balanced": True,
    }
    assert report["pos_sales"]["silver_rows"] == 3
    assert report["pos_sales"]["duplicates"] == {"bopis_pos_copy": 1}
    assert result.rows_in == 4 + 4 + 1 + 1 + 1 + 1 + 2
    assert result.rows_rejected == 2
    # Progress on the console: each table with its rows, in write order.
    assert "[silver] silver.quarantine: 2 rows to gate and merge (1/7)" in capsys.readouterr().out

    # BOPIS: one order, the online id, picked up at the POS store, no POS copy order or line.
    (o2,) = order(spark, cfg, "o2")
    assert (o2["fulfilment"], o2["store_id"], o2["status"], o2["channel"]) == (
        "pick_up_in_store",
        "S001",
        "completed",
        "app",
    )
    assert order(spark, cfg, "S001-R9") == []
    lines = lake.read(spark, cfg, "silver.order_lines")
    assert lines.where(F.col("order_id").isin("o2", "S001-R9")).count() == 1
    # The POS member, the CRM member and the web account share a phone: one person.
    keys = {r["order_id"]: r["customer_key"] for r in lake.read(spark, cfg, "silver.orders").collect()}
    assert keys["o1"] == keys["S001-R1"] is not None
    assert keys["S001-R3"] is None
    products = {r["sku"]: r["is_known"] for r in lake.read(spark, cfg, "silver.products").collect()}
    assert products == {"sku-a": True, "sku-b": True, "sku-x": False}

    quarantine = {
        (r["feed"], r["reason"]): r["raw_payload"]
        for r in lake.read(spark, cfg, "silver.quarantine").collect()
    }
    assert set(quarantine) == {("online_orders", "negative_price"), ("online_orders", "malformed")}
    assert quarantine[("online_orders", "malformed")] == '{"order_id": "o4", '

    # Rerun with nothing new: no table gets a new version.
    before = versions(spark, cfg)
    again = stage.run(spark, cfg, AS_OF, "silver-2")
    assert again.details == {"nothing_new": True}
    assert versions(spark, cfg) == before

    # One increment, four cases against what silver holds: o1's newer status wins (its earlier record,
    # redelivered, changes nothing); o2's older state arrives after silver has the pick-up's completed state
    # and never wins; a new person's first order; o7 links two existing persons (acc-1's person, seen first
    # on 06-09, and the mini-program user open-5, first seen on 06-10, by open-5's bound phone).
    keys_before = identity_keys(spark, cfg)
    append_bronze(
        spark,
        cfg,
        "online_orders",
        [
            online("o1", "shipped", "2026-06-11T09:00:00+08:00"),
            online("o1", "paid", "2026-06-10T10:00:00+08:00"),
            online("o2", "created", "2026-06-10T09:00:00+08:00", **O2_PICK_UP),
            online("o9", "paid", "2026-06-11T10:00:00+08:00", customer_id="acc-9", phone=None, email=None),
            online("o7", "paid", "2026-06-11T11:00:00+08:00", phone="13900001111", email=None),
        ],
        "online_orders/2026-06-11/a.jsonl",
    )
    second = stage.run(spark, cfg, AS_OF, "silver-3")
    entry = second.details["reconciliation"]["online_orders"]
    assert (entry["bronze_rows"], entry["silver_rows"]) == (5, 3) and entry["balanced"], entry
    assert entry["duplicates"] == {"superseded_status_update": 2}, entry
    (o1,) = order(spark, cfg, "o1")
    assert (o1["status"], o1["updated_ts"]) == ("shipped", datetime(2026, 6, 11, 1, 0))
    (o2_after,) = order(spark, cfg, "o2")
    assert o2_after.asDict() == o2.asDict()
    assert len(order(spark, cfg, "o9")) == 1
    # Stable keys: the older person's key survives, the other is recorded as merged into it and every one
    # of its identities, its customer row and its interactions move; no other identity changes its key.
    older, younger = keys_before[("online_account", "acc-1")], keys_before[("mini_program", "open-5")]
    assert older != younger
    merges = lake.read(spark, cfg, "silver.customer_merges").select("merged_key", "surviving_key", "run_id")
    assert [tuple(r) for r in merges.collect()] == [(younger, older, "silver-3")]
    keys_after = identity_keys(spark, cfg)
    new_person = keys_after.pop(("online_account", "acc-9"))
    assert new_person not in keys_before.values()
    assert keys_after == {source: older if key == younger else key for source, key in keys_before.items()}
    customers = {r["customer_key"] for r in lake.read(spark, cfg, "silver.customers").collect()}
    assert customers == set(keys_after.values()) | {new_person}
    assert order(spark, cfg, "o7")[0]["customer_key"] == order(spark, cfg, "o1")[0]["customer_key"] == older
    interactions = lake.read(spark, cfg, "silver.interactions")
    assert interactions.where(F.col("customer_key") == younger).count() == 0
    assert (
        interactions.where((F.col("sku") == "sku-a") & (F.col("channel") == "mini_program")).head()[
            "customer_key"
        ]
        == older
    )
    # The new person's identity refers to a customer written in the same run: no reference warning.
    references = (
        lake.read(spark, cfg, "ops.dq_results")
        .where("run_id = 'silver-3' AND expectation LIKE 'references%'")
        .select("table_name", "success")
        .collect()
    )
    assert ("silver.customer_identity", True) in {tuple(r) for r in references}, references
    assert all(r["success"] for r in references), references

    assert_no_raw_pii(spark, cfg)
