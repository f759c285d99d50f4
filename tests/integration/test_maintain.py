"""`o2o maintain`: OPTIMIZE (Z-ORDER where configured), VACUUM with the configured retention, refusing a short one
unless forced, and removing the checkpoint folders killed runs left behind."""

import json
import os
import time
from pathlib import Path

from o2o import lake
from o2o.cli import main

HOUR = 3600


def _appended_in_commits(spark, cfg, table: str, batches: list[list[tuple]], schema: str) -> None:
    for rows in batches:  # one small file per commit, as daily increments leave them
        spark.createDataFrame(rows, schema).coalesce(1).write.format("delta").mode("append").save(
            lake.table_path(cfg, table)
        )


def _data_files(cfg, table: str) -> list[Path]:
    return [p for p in Path(lake.table_path(cfg, table)).rglob("*.parquet") if "_delta_log" not in p.parts]


def _operations(spark, cfg, table: str) -> list:
    """The table's commits, oldest first."""
    return lake.history(spark, cfg, table).orderBy("version").collect()


def test_maintain_compacts_z_orders_vacuums_and_refuses_a_short_retention(spark, cfg, monkeypatch, capsys):
    monkeypatch.setenv("O2O__LAKE__ROOT", cfg.lake.root)
    monkeypatch.setenv("O2O__LAKE__LANDING", cfg.lake.landing)
    customers = [[(f"c{i}{j}", "Shanghai") for j in range(2)] for i in range(3)]
    _appended_in_commits(spark, cfg, "silver.customers", customers, "customer_key string, city string")
    _appended_in_commits(spark, cfg, "silver.products", [[("sku1",)], [("sku2",)]], "sku string")
    checkpoints = Path(lake.checkpoints_dir(cfg))
    killed_run, running = checkpoints / "run-killed-last-week", checkpoints / "run-still-running"
    for folder in (killed_run, running):
        folder.mkdir(parents=True)
    week_ago = time.time() - 8 * 24 * HOUR
    os.utime(killed_run, (week_ago, week_ago))

    assert main(["maintain", "--retention-hours", "24"]) == 2
    assert "--force" in capsys.readouterr().err
    assert [c["operation"] for c in _operations(spark, cfg, "silver.customers")] == ["WRITE"] * 3  # untouched

    assert main(["maintain"]) == 0

    out = capsys.readouterr().out
    assert "silver.customers" in out and "silver.products" in out
    commits = _operations(spark, cfg, "silver.customers")
    assert [c["operation"] for c in commits] == ["WRITE"] * 3 + ["OPTIMIZE", "VACUUM START", "VACUUM END"]
    assert json.loads(commits[3]["operationParameters"]["zOrderBy"]) == ["customer_key"]  # base.yaml's zorder
    products = _operations(spark, cfg, "silver.products")
    assert [c["operation"] for c in products][2:] == ["OPTIMIZE", "VACUUM START", "VACUUM END"]
    assert json.loads(products[2]["operationParameters"]["zOrderBy"]) == []
    assert lake.read(spark, cfg, "silver.customers").count() == 6
    assert (
        spark.sql(f"DESCRIBE DETAIL delta.`{lake.table_path(cfg, 'silver.customers')}`").first()["numFiles"]
        == 1
    )
    # The compacted-away files are younger than the 168-hour retention: still on disk for time travel.
    assert len(_data_files(cfg, "silver.customers")) == 4
    assert not killed_run.exists() and running.exists()

    assert main(["maintain", "--retention-hours", "0", "--force"]) == 0

    assert len(_data_files(cfg, "silver.customers")) == 1
    assert len(_data_files(cfg, "silver.products")) == 1
    assert lake.read(spark, cfg, "silver.customers").count() == 6
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled") == "true"
