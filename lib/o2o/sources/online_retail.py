"""UCI Online Retail II (2009-2010) mapped into the pos_sales and product_catalogue landing shapes of one store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from o2o.contracts import LANDING

MANIFEST_KEY = "online_retail_ii"


def read_online_retail(parquet_path: str | Path) -> pd.DataFrame:
    """The raw sheet as pandas (pyarrow reader), rows in file order."""
    return pd.read_parquet(parquet_path, engine="pyarrow")


def pos_rows(raw: pd.DataFrame, store_id: str) -> pd.DataFrame:
    """One pos_sales landing row per invoice line: receipt = invoice (cancellations keep 'C'), line_no = position
    within the invoice in file order, local UK time as given, member card = customer id (null for guests)."""
    customer = raw["Customer ID"]
    return pd.DataFrame(
        {
            "store_id": store_id,
            "receipt_no": raw["Invoice"],
            "line_no": raw.groupby("Invoice", sort=False).cumcount().to_numpy() + 1,
            "sold_at_local": raw["InvoiceDate"],
            "sku": raw["StockCode"],
            "quantity": raw["Quantity"],
            "unit_price": raw["Price"],
            "member_card": customer.astype("Int64").astype("string").where(customer.notna(), None),
            "phone": None,
            "online_order_id": None,
            "original_receipt_no": None,  # the data set does not say which invoice a cancellation reverses
        }
    )[[f.name for f in LANDING["pos_sales"].fields]]


def catalogue_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """One product_catalogue row per stock code: its first description, first positive price and first sale date."""
    first = raw.drop_duplicates("StockCode")
    positive = raw[raw["Price"] > 0].drop_duplicates("StockCode").set_index("StockCode")["Price"]
    return pd.DataFrame(
        {
            "sku": first["StockCode"].to_numpy(),
            "product_name": first["Description"].to_numpy(),
            "category": None,
            "brand": None,
            "list_price": positive.reindex(first["StockCode"]).to_numpy(),
            "launched_at": first["InvoiceDate"].str[:10].to_numpy(),
        }
    )[[f.name for f in LANDING["product_catalogue"].fields]].sort_values("sku", ignore_index=True)


def facts(raw: pd.DataFrame) -> dict:
    """The README facts of the sheet, counted from the raw rows."""
    cancelled = raw["Invoice"].str.startswith("C")
    clean = raw[raw["Customer ID"].notna() & (raw["Quantity"] > 0) & (raw["Price"] > 0) & ~cancelled]
    return {
        "rows": int(len(raw)),
        "invoices": int(raw["Invoice"].nunique()),
        "customers": int(raw["Customer ID"].nunique()),
        "rows_without_customer": int(raw["Customer ID"].isna().sum()),
        "cancellation_rows": int(cancelled.sum()),
        "cancellation_invoices": int(raw.loc[cancelled, "Invoice"].nunique()),
        "duplicate_rows": int(raw.duplicated().sum()),
        "clean_rows": int(len(clean)),
        "clean_customers": int(clean["Customer ID"].nunique()),
        "clean_invoices": int(clean["Invoice"].nunique()),
        "clean_revenue": round(float((clean["Quantity"] * clean["Price"]).sum()), 2),
        "countries": int(raw["Country"].nunique()),
        "stock_codes": int(raw["StockCode"].nunique()),
        "first_date": str(raw["InvoiceDate"].min())[:10],
        "last_date": str(raw["InvoiceDate"].max())[:10],
    }


def to_landing(parquet_path: str | Path, landing_dir: str | Path, store_id: str = "S008") -> dict:
    """Write the sheet as daily POS CSVs of `store_id` plus one catalogue CSV; return the facts (also in _manifest.json).

    Files: <landing>/pos_sales/<day>/pos_<store>_<day>.csv and <landing>/product_catalogue/<first day>/catalogue_<first day>.csv.
    """
    raw = read_online_retail(parquet_path)
    landing = Path(landing_dir)
    rows = pos_rows(raw, store_id)
    day = rows["sold_at_local"].str[:10]
    files = []
    for business_date, part in rows.groupby(day, sort=True):  # one file per trading day
        relative = f"pos_sales/{business_date}/pos_{store_id}_{business_date}.csv"
        target = landing / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        part.to_csv(target, index=False, lineterminator="\n")
        files.append({"file": relative, "records": int(len(part))})
    result = facts(raw)
    catalogue = catalogue_rows(raw)
    catalogue_file = f"product_catalogue/{result['first_date']}/catalogue_{result['first_date']}.csv"
    (landing / catalogue_file).parent.mkdir(parents=True, exist_ok=True)
    catalogue.to_csv(landing / catalogue_file, index=False, lineterminator="\n")
    result.update(
        {
            "store_id": store_id,
            "source": str(parquet_path),
            "pos_files": len(files),
            "files": files,
            "catalogue_file": catalogue_file,
            "catalogue_rows": int(len(catalogue)),
        }
    )
    manifest_path = landing / "_manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    manifest[MANIFEST_KEY] = result
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return result
