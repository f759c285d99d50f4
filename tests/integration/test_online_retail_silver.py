"""UCI Online Retail II through bronze and silver: silver reproduces the data set's README facts.

Expected values are the README's figures (../shared/data/README.md, counted with pandas from the file) and,
where the pipeline's rule differs from the README's cleaning rule, a pandas count of that rule on the raw file.

Rules that differ, stated:
- README "clean" rows: customer id, quantity > 0, price > 0, not a cancellation. The pipeline keeps every
  sale line; it quarantines only a line with a negative (or missing) price (`negative_price`: an accounting
  adjustment, not a sale) and a zero quantity (`bad_quantity`). Guest checkouts stay as anonymous orders,
  cancellations as orders of negative lines, zero-price lines as lines. The clean facts are then read from
  silver by the README's own filter.
- Money is stored in cents (decimal(18,2)), as the POS contract says: the 14 clean rows priced 0.001 GBP
  become 0.00 in silver, so the README's filter (price > 0) leaves them out there; the revenue is the
  README's less those 14 x 0.001. Both are counted from the raw file here.
- README "fully identical duplicate rows": the pipeline does not drop them. A POS line's key is the receipt
  and the line's position on it, so two identical scans on one receipt are two lines (two items sold).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import pyspark.sql.functions as F
import pytest

from o2o import lake, runs
from o2o.pipeline import run_pipeline
from o2o.silver.identity import MEMBER
from o2o.sources.online_retail import to_landing
from realdata import require_data

pytestmark = pytest.mark.real_data

STORE = "S008"  # a London store in conf/base.yaml: invoice times are UK local time
LAST_DAY = date(2010, 12, 9)
CENT = Decimal("0.01")
README = {
    "rows": 525_461,
    "invoices": 28_816,
    "customers": 4_383,
    "rows_without_customer": 107_927,
    "cancellation_rows": 10_206,
    "cancellation_invoices": 4_592,
    "clean_rows": 407_664,
    "clean_customers": 4_312,
    "clean_invoices": 19_213,
    "clean_revenue": Decimal("8832003.27"),
}


@pytest.fixture(scope="module")
def retail_lake(spark, base_cfg, data_dir, tmp_path_factory):
    source = require_data(data_dir / "online_retail_ii" / "online_retail_II_2009-2010.parquet")
    folder = tmp_path_factory.mktemp("online_retail")
    cfg = base_cfg.replace(
        lake={
            "root": str(folder / "lake"),
            "landing": str(folder / "landing"),
            "reports": "",
            "checkpoints": "",
        }
    )
    to_landing(source, folder / "landing", store_id=STORE)
    run_pipeline(spark, cfg, LAST_DAY, stages=("bronze", "silver"))
    raw = pd.read_parquet(source)
    return cfg, raw


def test_silver_reproduces_the_readme_facts(spark, retail_lake):
    cfg, raw = retail_lake
    # The pipeline's quarantine rule, counted on the raw file with pandas.
    negative_price = raw["Price"].isna() | (raw["Price"] < 0)
    zero_quantity = raw["Quantity"].isna() | (raw["Quantity"] == 0)
    kept = raw[~negative_price & ~zero_quantity]

    assert lake.read(spark, cfg, "bronze.pos_sales").count() == README["rows"] == len(raw)
    details = json.loads(runs.last_successful_run(spark, cfg, "silver")["details"])
    entry = details["reconciliation"]["pos_sales"]
    assert entry["bronze_rows"] == README["rows"] and entry["balanced"]
    assert entry["quarantined"] == {
        reason: n
        for reason, n in (
            ("negative_price", int(negative_price.sum())),
            ("bad_quantity", int((zero_quantity & ~negative_price).sum())),
        )
        if n
    }
    assert entry["duplicates"] == {} and entry["silver_rows"] == len(kept)

    orders = lake.read(spark, cfg, "silver.orders").where(F.col("store_id") == STORE)
    lines = lake.read(spark, cfg, "silver.order_lines").join(
        orders.select("order_id", "customer_key"), "order_id"
    )
    cancelled = F.col("order_id").startswith(f"{STORE}-C")
    summary = lines.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("order_id").alias("invoices"),
        F.countDistinct("customer_key").alias("customers"),
        F.sum(F.col("customer_key").isNull().cast("int")).alias("rows_without_customer"),
        F.sum(cancelled.cast("int")).alias("cancellation_rows"),
        F.countDistinct(F.when(cancelled, F.col("order_id"))).alias("cancellation_invoices"),
    ).head()
    assert summary["rows"] == len(kept)
    # Invoices and customers: the README's figures, less those whose every line was quarantined.
    assert summary["invoices"] == README["invoices"] - (raw["Invoice"].nunique() - kept["Invoice"].nunique())
    assert summary["customers"] == README["customers"] - (
        raw["Customer ID"].nunique() - kept["Customer ID"].nunique()
    )
    assert summary["rows_without_customer"] == README["rows_without_customer"] - int(
        raw.loc[negative_price | zero_quantity, "Customer ID"].isna().sum()
    )
    cancellations = kept["Invoice"].str.startswith("C")
    assert summary["cancellation_rows"] == README["cancellation_rows"] - int(
        (raw["Invoice"].str.startswith("C") & (negative_price | zero_quantity)).sum()
    )
    raw_cancellations = raw["Invoice"].str.startswith("C")
    assert summary["cancellation_invoices"] == README["cancellation_invoices"] - (
        raw.loc[raw_cancellations, "Invoice"].nunique() - kept.loc[cancellations, "Invoice"].nunique()
    )

    clean = lines.where(
        F.col("customer_key").isNotNull() & (F.col("quantity") > 0) & (F.col("unit_price") > 0) & ~cancelled
    ).agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("customer_key").alias("customers"),
        F.countDistinct("order_id").alias("invoices"),
        F.sum("amount").alias("revenue"),
    )
    row = clean.head()
    readme_clean = raw[
        raw["Customer ID"].notna()
        & (raw["Quantity"] > 0)
        & (raw["Price"] > 0)
        & ~raw["Invoice"].str.startswith("C")
    ]
    cents = readme_clean["Price"].map(lambda price: Decimal(str(price)).quantize(CENT, ROUND_HALF_UP))
    assert (cents == 0).sum() == 14
    assert row["rows"] == README["clean_rows"] - 14
    assert row["customers"] == README["clean_customers"]
    assert row["invoices"] == README["clean_invoices"]
    in_cents = sum(
        (Decimal(int(q)) * price for q, price in zip(readme_clean["Quantity"], cents, strict=True)),
        Decimal(0),
    )
    assert row["revenue"] == in_cents
    assert abs(row["revenue"] - README["clean_revenue"]) <= Decimal("0.02")
    # One person per customer id: the data set has no phone or e-mail to link two ids.
    identities = lake.read(spark, cfg, "silver.customer_identity").where(F.col("channel") == MEMBER)
    assert identities.count() == kept["Customer ID"].nunique()
    assert identities.select("customer_key").distinct().count() == kept["Customer ID"].nunique()
