"""Bronze ingest on hand-written landing files: counts, malformed rows kept, header drift, exactly once."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from delta.tables import DeltaTable

from o2o import lake
from o2o.bronze import ingest

AS_OF = date(2026, 6, 2)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _order(order_id: str, qty: int = 1) -> str:
    return json.dumps(
        {
            "order_id": order_id,
            "channel": "web",
            "customer_id": "A1",
            "phone": "138-0000-0001",
            "email": "a@x.cn",
            "order_ts": "2026-06-01T10:00:00+08:00",
            "updated_ts": "2026-06-01T10:00:00+08:00",
            "status": "paid",
            "fulfilment": "delivery",
            "pickup_store_id": None,
            "shipping_fee": 8.0,
            "currency": "CNY",
            "items": [{"sku": "P1", "quantity": qty, "unit_price": 10.5}],
        }
    )


POS_HEADER = "store_id,receipt_no,line_no,sold_at_local,sku,quantity,unit_price,member_card,phone,online_order_id,original_receipt_no"


def _landing(cfg) -> Path:
    return Path(cfg.resolve(cfg.lake.landing))


def test_counts_malformed_and_extra_columns_are_kept(spark, cfg):
    landing = _landing(cfg)
    _write(
        landing / "online_orders/2026-06-01/online_orders_2026-06-01.jsonl",
        "\n".join([_order("W1"), _order("W2", 2), '{"order_id": "W3", "items": [', _order("W4")]) + "\n",
    )
    _write(
        landing / "pos_sales/2026-06-01/pos_S001_2026-06-01.csv",
        f"{POS_HEADER}\nS001,R1,1,2026-06-01 09:00:00,P1,2,10.0,M01,,,\nS001,R1,2,2026-06-01 09:00:00,P2,one,5.0,M01,,,\n",
    )
    _write(
        landing / "pos_sales/2026-06-02/pos_S001_2026-06-02.csv",
        f"{POS_HEADER},wechat_unionid\nS001,R2,1,2026-06-02 09:00:00,P1,1,10.0,,,,,u-77\n",
    )

    result = ingest.run(spark, cfg, AS_OF, "run-1", feeds=("online_orders", "pos_sales"))

    orders = lake.read(spark, cfg, "bronze.online_orders")
    assert orders.count() == 4
    assert (
        orders.where(F.col("_corrupt_record").isNotNull()).select("_raw").head()[0]
        == '{"order_id": "W3", "items": ['
    )
    assert orders.where("order_id = 'W2'").select(F.col("items")[0]["quantity"]).head()[0] == 2
    assert orders.where("order_id = 'W1'").select("_channel", "_run_id").head() == ("web", "run-1")

    pos = lake.read(spark, cfg, "bronze.pos_sales")
    assert pos.count() == 3
    assert pos.where(F.col("_corrupt_record").isNotNull()).select("receipt_no", "line_no").head() == ("R1", 2)
    late_row = pos.where("receipt_no = 'R2'").head()
    assert late_row["_corrupt_record"] is None
    assert json.loads(late_row["_extra"]) == {"wechat_unionid": "u-77"}
    assert result.details["online_orders"] == {"files": 1, "rows": 4, "malformed": 1}
    assert result.details["pos_sales"] == {"files": 2, "rows": 3, "malformed": 1}
    # Each data file's statistics in the Delta log: its row count, and min/max of the lineage columns only.
    log = spark.read.json(f"{lake.table_path(cfg, 'bronze.online_orders')}/_delta_log/*.json")
    stats = [json.loads(row[0]) for row in log.where("add IS NOT NULL").select("add.stats").collect()]
    assert sum(s["numRecords"] for s in stats) == 4
    assert all(set(s["minValues"]) == {"_source_file", "_ingested_at", "_run_id"} for s in stats)


def test_rerun_changes_nothing_and_a_new_file_adds_only_its_rows(spark, cfg):
    landing = _landing(cfg)
    _write(landing / "online_orders/2026-06-01/a.jsonl", "\n".join([_order("W1"), _order("W2")]) + "\n")
    ingest.run(spark, cfg, AS_OF, "run-1", feeds=("online_orders",))
    version_after_first = lake.version(spark, cfg, "bronze.online_orders")

    ingest.run(spark, cfg, AS_OF, "run-2", feeds=("online_orders",))
    assert lake.version(spark, cfg, "bronze.online_orders") == version_after_first

    _write(landing / "online_orders/2026-06-02/b.jsonl", _order("W3") + "\n")
    ingest.run(spark, cfg, AS_OF, "run-3", feeds=("online_orders",))

    table = lake.read(spark, cfg, "bronze.online_orders")
    assert sorted(r[0] for r in table.select("order_id").collect()) == ["W1", "W2", "W3"]
    assert table.where("_run_id = 'run-3'").count() == 1
    assert lake.version(spark, cfg, "bronze.online_orders") == version_after_first + 1


def test_listing_skips_hidden_files_and_keeps_odd_names_exact(spark, cfg):
    landing = _landing(cfg)
    odd = "2026-06-01/caf\u00e9 export %41#1.jsonl"  # a space, a literal %41 (not "A"), a '#', non-ASCII
    _write(landing / "online_orders" / odd, _order("W1") + "\n")
    _write(landing / "online_orders/2026-06-02/b.jsonl", _order("W2") + "\n")
    _write(landing / "online_orders/2026-06-02/.b.jsonl.crc", "x")
    _write(landing / "online_orders/2026-06-02/_SUCCESS", "")

    listed = ingest.list_landing_files(spark, str(landing / "online_orders"))

    root = f"file:{landing}/online_orders"
    assert listed == [f"{root}/{odd}", f"{root}/2026-06-02/b.jsonl"]
    assert ingest.list_landing_files(spark, str(landing / "no_such_feed")) == []

    ingest.run(spark, cfg, AS_OF, "run-1", feeds=("online_orders",))
    version_after_first = lake.version(spark, cfg, "bronze.online_orders")
    # The odd name must be known by its ledger key: nothing is ingested twice.
    ingest.run(spark, cfg, AS_OF, "run-2", feeds=("online_orders",))

    assert lake.version(spark, cfg, "bronze.online_orders") == version_after_first
    rows = lake.read(spark, cfg, "bronze.online_orders").select("order_id").collect()
    assert sorted(r["order_id"] for r in rows) == ["W1", "W2"]


def test_landing_moved_to_another_root_is_not_ingested_again(spark, cfg, tmp_path):
    old_root = _landing(cfg)
    _write(old_root / "online_orders/2026-06-01/a.jsonl", "\n".join([_order("W1"), _order("W2")]) + "\n")
    ingest.run(spark, cfg, AS_OF, "run-1", feeds=("online_orders",))
    version_after_first = lake.version(spark, cfg, "bronze.online_orders")

    # The same deliveries, now read from another mount; one new file arrives there.
    moved = cfg.replace(lake={"landing": str(tmp_path / "remounted")})
    shutil.copytree(old_root, _landing(moved))
    ingest.run(spark, moved, AS_OF, "run-2", feeds=("online_orders",))
    assert lake.version(spark, cfg, "bronze.online_orders") == version_after_first

    _write(_landing(moved) / "online_orders/2026-06-02/a.jsonl", _order("W3") + "\n")  # same name, new day
    ingest.run(spark, moved, AS_OF, "run-3", feeds=("online_orders",))
    table = lake.read(spark, cfg, "bronze.online_orders")
    assert sorted(r["order_id"] for r in table.collect()) == ["W1", "W2", "W3"]
    assert [r["order_id"] for r in table.where("_run_id = 'run-3'").collect()] == ["W3"]


def test_a_batch_of_header_only_files_passes_and_commits_nothing(spark, cfg):
    landing = _landing(cfg)
    _write(
        landing / "pos_sales/2026-06-01/pos_S001_2026-06-01.csv",
        f"{POS_HEADER}\nS001,R1,1,2026-06-01 09:00:00,P1,2,10.0,M01,,,\n",
    )
    ingest.run(spark, cfg, AS_OF, "run-1", feeds=("pos_sales",))
    version_after_first = lake.version(spark, cfg, "bronze.pos_sales")

    # A store without sales that day still exports its header: not a failed gate, not a commit.
    _write(landing / "pos_sales/2026-06-02/pos_S001_2026-06-02.csv", f"{POS_HEADER}\n")
    result = ingest.run(spark, cfg, AS_OF, "run-2", feeds=("pos_sales",))

    assert result.details["pos_sales"] == {"files": 1, "rows": 0, "malformed": 0}
    assert lake.version(spark, cfg, "bronze.pos_sales") == version_after_first
    assert lake.read(spark, cfg, "bronze.pos_sales").count() == 1


def test_same_batch_planned_twice_lands_once(spark, cfg):
    """Two overlapping runs planned on the same table version: Delta's txn id applies the batch once."""
    landing = _landing(cfg)
    _write(landing / "online_orders/2026-06-01/a.jsonl", _order("W1") + "\n")
    lake.ensure_table(
        spark, cfg, "bronze.online_orders", ingest.bronze_schema("online_orders"), change_feed=True
    )
    planned_on = lake.version(spark, cfg, "bronze.online_orders")
    batch = ingest.with_lineage(
        ingest.read_json_feed(spark, "online_orders", [str(landing / "online_orders/2026-06-01/a.jsonl")]),
        "online_orders",
        "run-x",
    )

    first = lake.append_once(batch, cfg, "bronze.online_orders", "o2o-bronze-online_orders", planned_on + 1)
    second = lake.append_once(batch, cfg, "bronze.online_orders", "o2o-bronze-online_orders", planned_on + 1)

    assert (first, second) == (True, False)
    assert lake.read(spark, cfg, "bronze.online_orders").count() == 1


def _ledger(spark, cfg) -> set[tuple[str, str, int]]:
    rows = lake.read(spark, cfg, ingest.LEDGER).collect()
    return {(r["feed"], r["file"], r["bronze_version"]) for r in rows}


def test_the_table_not_the_ledger_decides_which_files_are_ingested(spark, cfg):
    """ops.bronze_files is trusted only at the version it was read at; otherwise the table is read again.

    First the ledger is put back to before the last run's write, as a run killed between its bronze commit
    and the ledger's leaves it: that file must not be ingested twice. Then bronze is RESTOREd to before a
    file while the ledger still names it: that file must be ingested again, once.
    """
    landing = _landing(cfg)
    _write(landing / "online_orders/2026-06-01/a.jsonl", _order("W1") + "\n")
    ingest.run(spark, cfg, AS_OF, "run-1", feeds=("online_orders",))
    only_a = lake.version(spark, cfg, "bronze.online_orders")
    ledger_before = lake.version(spark, cfg, ingest.LEDGER)
    _write(landing / "online_orders/2026-06-02/b.jsonl", _order("W2") + "\n")
    ingest.run(spark, cfg, AS_OF, "run-2", feeds=("online_orders",))
    a_and_b = lake.version(spark, cfg, "bronze.online_orders")
    files = ("online_orders/2026-06-01/a.jsonl", "online_orders/2026-06-02/b.jsonl")
    assert _ledger(spark, cfg) == {("online_orders", file, a_and_b) for file in files}

    DeltaTable.forPath(spark, lake.table_path(cfg, ingest.LEDGER)).restoreToVersion(ledger_before)
    ingest.run(spark, cfg, AS_OF, "run-3", feeds=("online_orders",))

    assert lake.version(spark, cfg, "bronze.online_orders") == a_and_b
    rows = lake.read(spark, cfg, "bronze.online_orders").select("order_id").collect()
    assert sorted(r["order_id"] for r in rows) == ["W1", "W2"]
    assert _ledger(spark, cfg) == {("online_orders", file, a_and_b) for file in files}

    DeltaTable.forPath(spark, lake.table_path(cfg, "bronze.online_orders")).restoreToVersion(only_a)
    ingest.run(spark, cfg, AS_OF, "run-4", feeds=("online_orders",))

    table = lake.read(spark, cfg, "bronze.online_orders")
    assert sorted(r["order_id"] for r in table.collect()) == ["W1", "W2"]
    assert [r["order_id"] for r in table.where("_run_id = 'run-4'").collect()] == ["W2"]
    assert {file for _, file, _ in _ledger(spark, cfg)} == set(files)


def test_a_missing_landing_folder_fails_naming_it_while_an_empty_one_is_a_quiet_day(spark, cfg):
    with pytest.raises(
        ingest.LandingNotFound, match=r"landing folder .*/landing does not exist.*lake\.landing"
    ):
        ingest.run(spark, cfg, AS_OF, "run-1", feeds=("reviews",))
    assert not lake.exists(spark, cfg, "bronze.reviews")

    _landing(cfg).mkdir(parents=True)
    result = ingest.run(spark, cfg, AS_OF, "run-2", feeds=("reviews",))
    assert result.details["reviews"] == {"files": 0, "rows": 0, "malformed": 0}
