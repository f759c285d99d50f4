"""Quarantine and reconciliation: deterministic record ids, quarantine rows, late fates, counts that add up."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pyspark.sql.functions as F
from chispa import assert_df_equality

from o2o.contracts import SILVER, bronze_schema
from o2o.silver.products import conform_products, triage_catalogue
from o2o.silver.quarantine import (
    apply_late_fates,
    late_fates,
    outcome_counts,
    quarantine_rows,
    reconciliation,
    redact_pii,
    triage_crm_members,
)

RUN_TS = datetime(2026, 7, 1, 3, 0, tzinfo=timezone.utc)


def bronze(spark, feed: str, rows: list[dict]):
    schema = bronze_schema(feed)
    lineage = {
        "_source_file": "f1",
        "_ingested_at": datetime(2026, 7, 1, tzinfo=timezone.utc),
        "_run_id": "bronze-1",
    }
    return spark.createDataFrame(
        [tuple({**lineage, **row}.get(f.name) for f in schema.fields) for row in rows], schema
    )


def product(sku="P1", price=9.99, **extra) -> dict:
    return {"sku": sku, "product_name": "Tea", "category": "food", "brand": "B", "list_price": price, **extra}


def test_record_ids_are_deterministic_and_distinguish_repeated_lines(spark):
    rows = [
        {"_corrupt_record": "bad,line", "_raw": "bad,line"},
        {"_corrupt_record": "bad,line", "_raw": "bad,line"},  # the same text twice in one file
        {"_corrupt_record": "bad,line", "_raw": "bad,line", "_source_file": "f2"},
    ]
    first = {r["_record_id"] for r in triage_catalogue(bronze(spark, "product_catalogue", rows)).collect()}
    again = {r["_record_id"] for r in triage_catalogue(bronze(spark, "product_catalogue", rows)).collect()}

    def rid(file: str, occurrence: int) -> str:
        return hashlib.sha256(f"{file}\u0001bad,line\u0001{occurrence}".encode()).hexdigest()

    assert first == again == {rid("f1", 1), rid("f1", 2), rid("f2", 1)}


def test_quarantine_rows_carry_reason_and_raw_payload(spark):
    rows = [
        product("P1"),
        product("P2", -1.0),
        {"_corrupt_record": "P3,,x", "_raw": "P3,,x"},
        product(None),
    ]
    triaged = triage_catalogue(bronze(spark, "product_catalogue", rows))
    got = quarantine_rows(triaged, "product_catalogue", "run-1", RUN_TS).drop("record_id", "detail")
    payload_p2 = '{"sku":"P2","product_name":"Tea","category":"food","brand":"B","list_price":-1.0}'
    payload_none = '{"product_name":"Tea","category":"food","brand":"B","list_price":9.99}'
    expected = spark.createDataFrame(
        [
            ("product_catalogue", "negative_price", "f1", payload_p2, "run-1", RUN_TS),
            ("product_catalogue", "malformed", "f1", "P3,,x", "run-1", RUN_TS),
            ("product_catalogue", "missing_key", "f1", payload_none, "run-1", RUN_TS),
        ],
        "feed string, reason string, source_file string, raw_payload string, run_id string, quarantined_at timestamp",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert set(quarantine_rows(triaged, "x", "r", RUN_TS).columns) == set(SILVER["quarantine"].fieldNames())


def test_catalogue_newest_extract_wins_and_unknown_skus_are_kept(spark):
    rows = [
        product("P1", 9.99, _source_file="catalogue/2026-06-01/c.csv"),
        product("P1", 8.50, _source_file="catalogue/2026-06-02/c.csv"),
        product("P1", 8.50, _source_file="catalogue/2026-06-02/c-again.csv"),
        product("P2", 1.00, _source_file="catalogue/2026-06-01/c.csv"),
    ]
    triaged = triage_catalogue(bronze(spark, "product_catalogue", rows))
    fates = sorted(str(r["_duplicate"]) for r in triaged.collect())
    assert fates == ["None", "None", "exact_duplicate", "superseded_record"]

    seen = spark.createDataFrame([("P1",), ("P9",), ("P5",)], "sku string")
    known = spark.createDataFrame([("P5",)], "sku string")
    got = conform_products(triaged, seen, known, "run-1")
    expected = spark.createDataFrame(
        [
            ("P1", "Tea", "food", "B", 8.50, True, "run-1"),
            ("P2", "Tea", "food", "B", 1.00, True, "run-1"),
            ("P9", None, None, None, None, False, "run-1"),
        ],
        "sku string, product_name string, category string, brand string, list_price double, is_known boolean, updated_run_id string",
    ).withColumn("list_price", F.col("list_price").cast("decimal(12,2)"))
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_late_fates_only_change_rows_triage_kept(spark):
    rows = [product("P1"), product("P2", -1.0)]
    triaged = triage_catalogue(bronze(spark, "product_catalogue", rows))
    ids = {r["sku"]: r["_record_id"] for r in triaged.collect()}
    late = late_fates(triaged, duplicate="same_interaction")  # both rows, but only P1 was kept
    got = {r["sku"]: (r["_reason"], r["_duplicate"]) for r in apply_late_fates(triaged, late).collect()}
    assert got == {"P1": (None, "same_interaction"), "P2": ("negative_price", None)}
    assert len(ids) == 2


def test_reconciliation_adds_up_per_feed(spark):
    members = [
        {"member_id": "m1", "phone": "1", "_source_file": "crm/2026-06-01/a.csv"},
        {
            "member_id": "M1",
            "phone": "2",
            "_source_file": "crm/2026-06-02/a.csv",
        },  # newer record of the same member
        {"member_id": "M2", "_source_file": "crm/2026-06-01/a.csv"},
        {"member_id": "M2", "_source_file": "crm/2026-06-01/a.csv"},  # repeated line
        {"member_id": " ", "_source_file": "crm/2026-06-01/a.csv"},
        {"_corrupt_record": "x", "_source_file": "crm/2026-06-01/a.csv"},
    ]
    triaged = triage_crm_members(bronze(spark, "crm_members", members))
    counts = outcome_counts(triaged, "crm_members").collect()
    report = reconciliation(counts, {"crm_members": 6})
    assert report == {
        "crm_members": {
            "bronze_rows": 6,
            "silver_rows": 2,
            "quarantined": {"missing_key": 1, "malformed": 1},
            "duplicates": {"superseded_record": 1, "exact_duplicate": 1},
            "balanced": True,
        }
    }
    assert reconciliation(counts, {"crm_members": 7})["crm_members"]["balanced"] is False


def test_raw_payload_keeps_no_phone_or_email(spark):
    payloads = spark.createDataFrame(
        [
            ('{"order_id":"o1","phone":"138 1234 5678","email":"a@b.cn","ts":1781053200000}',),
            ("S001,R1,1,2026-06-10 12:00:00,sku-a,1,-2.0,M1,+86 139-0000-1111,,",),
        ],
        "payload string",
    )
    got = [r[0] for r in payloads.select(redact_pii(F.col("payload"))).collect()]
    assert got == [
        '{"order_id":"o1","phone":"<redacted>","email":"<redacted>","ts":1781053200000}',
        "S001,R1,1,2026-06-10 12:00:00,sku-a,1,-2.0,M1,<phone>,,",
    ]
