"""UCI Online Retail II -> pos_sales / product_catalogue landing CSVs: the README facts hold in what was written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from o2o.contracts import LANDING
from o2o.sources.online_retail import to_landing
from realdata import require_data

pytestmark = pytest.mark.real_data

TEXT = {"store_id": str, "receipt_no": str, "sold_at_local": str, "sku": str, "member_card": str}


@pytest.fixture(scope="module")
def written(data_dir, tmp_path_factory):
    source = require_data(data_dir / "online_retail_ii" / "online_retail_II_2009-2010.parquet")
    landing = tmp_path_factory.mktemp("retail_landing")
    result = to_landing(source, landing)
    files = sorted(landing.glob("pos_sales/*/*.csv"))
    rows = pd.concat([pd.read_csv(p, dtype=TEXT) for p in files], ignore_index=True)
    return landing, result, files, rows


def test_readme_facts_hold_in_the_landing_csvs(written):
    _, _, _, rows = written
    cancelled = rows["receipt_no"].str.startswith("C")
    clean = rows[rows["member_card"].notna() & (rows["quantity"] > 0) & (rows["unit_price"] > 0) & ~cancelled]
    assert len(rows) == 525_461
    assert rows["receipt_no"].nunique() == 28_816
    assert rows["member_card"].nunique() == 4_383
    assert rows["member_card"].isna().sum() == 107_927
    assert cancelled.sum() == 10_206
    assert rows.loc[cancelled, "receipt_no"].nunique() == 4_592
    assert rows.drop(columns="line_no").duplicated().sum() == 6_865
    assert len(clean) == 407_664
    assert clean["member_card"].nunique() == 4_312
    assert clean["receipt_no"].nunique() == 19_213
    assert round((clean["quantity"] * clean["unit_price"]).sum(), 2) == 8_832_003.27
    assert rows["sku"].nunique() == 4_632


def test_rows_follow_the_pos_contract(written):
    _, _, files, rows = written
    names = [f.name for f in LANDING["pos_sales"].fields]
    assert list(rows.columns) == names
    assert (rows["store_id"] == "S008").all()
    assert rows["member_card"].dropna().str.fullmatch(r"\d+").all()  # no '.0' left from a float id
    assert rows[["phone", "online_order_id", "original_receipt_no"]].isna().all().all()
    # cancellations keep the source's negative quantities; one manual adjustment (C496350) is positive in the source
    cancellation_quantity = rows.loc[rows["receipt_no"].str.startswith("C"), "quantity"]
    assert (cancellation_quantity < 0).sum() == 10_205
    assert rows.loc[(rows["receipt_no"] == "C496350"), "quantity"].tolist() == [1]
    # one file per trading day, named by its local date, holding only that day's sales
    for path in files[:20]:
        day = path.parent.name
        assert path.name == f"pos_S008_{day}.csv"
        assert pd.read_csv(path, dtype=TEXT)["sold_at_local"].str.startswith(day).all()


def test_line_numbers_count_rows_within_an_invoice_in_file_order(written, data_dir):
    _, _, _, rows = written
    raw = pd.read_parquet(data_dir / "online_retail_ii" / "online_retail_II_2009-2010.parquet")
    first = raw[raw["Invoice"] == "489434"]
    written_first = rows[rows["receipt_no"] == "489434"].sort_values("line_no")
    assert written_first["line_no"].tolist() == list(range(1, len(first) + 1))
    assert written_first["sku"].tolist() == first["StockCode"].tolist()
    per_invoice = rows.groupby("receipt_no")["line_no"].agg(["min", "max", "count", "nunique"])
    assert (per_invoice["min"] == 1).all()
    assert (per_invoice["max"] == per_invoice["count"]).all()
    assert (per_invoice["nunique"] == per_invoice["count"]).all()


def test_catalogue_and_manifest(written):
    landing, result, files, _ = written
    catalogue = pd.read_csv(landing / result["catalogue_file"], dtype={"sku": str})
    assert list(catalogue.columns) == [f.name for f in LANDING["product_catalogue"].fields]
    assert catalogue["sku"].is_unique and len(catalogue) == 4_632
    manifest = json.loads((landing / "_manifest.json").read_text())
    facts = manifest["online_retail_ii"]
    assert facts == json.loads(json.dumps(result))
    assert (facts["rows"], facts["invoices"], facts["clean_revenue"]) == (525_461, 28_816, 8_832_003.27)
    assert facts["pos_files"] == len(files)
    assert sum(f["records"] for f in facts["files"]) == 525_461
