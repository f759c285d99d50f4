"""The product catalogue in silver: the latest record per SKU, and SKUs seen in sales or clicks but not catalogued."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from o2o.contracts import MONEY, SILVER
from o2o.silver.quarantine import blank, mark_duplicates, with_first_failure, with_record_ids


def triage_catalogue(bronze: DataFrame) -> DataFrame:
    """Catalogue rows with `_reason`/`_detail` and `_duplicate` set.

    The catalogue is a full extract with no event time, so the newest extract (source file path, which
    carries the extract date, then ingest time) wins; older records of a SKU are `superseded_record`.
    """
    rows = with_record_ids(bronze, "product_catalogue")
    checks = [
        (F.col("_corrupt_record").isNotNull(), "malformed", "line does not fit the CSV header"),
        (blank("sku"), "missing_key", "sku is missing"),
        (
            F.col("list_price") < 0,
            "negative_price",
            F.concat(F.lit("list_price "), F.col("list_price").cast("string")),
        ),
    ]
    return mark_duplicates(
        with_first_failure(rows, checks).withColumn("_sku", F.trim("sku")),
        keys=["_sku"],
        newest_first=[F.col("_source_file").desc(), F.col("_ingested_at").desc()],
        other_category="superseded_record",
    ).drop("_sku")


def conform_products(
    catalogue: DataFrame, seen_skus: DataFrame, known_skus: DataFrame, run_id: str
) -> DataFrame:
    """silver.products rows: kept catalogue records (is_known true) and unknown SKUs (is_known false).

    `seen_skus` (sku) are the SKUs of this increment's order lines and interactions; those neither in the
    catalogue records nor in `known_skus` (sku, the catalogued SKUs silver already holds) are kept with
    is_known false and no attributes, so no sale or click loses its product.
    """
    known = catalogue.where(F.col("_reason").isNull() & F.col("_duplicate").isNull()).select(
        F.trim("sku").alias("sku"),
        F.trim("product_name").alias("product_name"),
        F.trim("category").alias("category"),
        F.trim("brand").alias("brand"),
        F.col("list_price").try_cast(MONEY).alias("list_price"),
        F.lit(True).alias("is_known"),
    )
    unknown = (
        seen_skus.select(F.trim("sku").alias("sku"))
        .where(F.col("sku").isNotNull() & (F.col("sku") != ""))
        .distinct()
        .join(known.select("sku"), "sku", "left_anti")
        .join(known_skus.select("sku"), "sku", "left_anti")
        .select(
            "sku",
            F.lit(None).cast("string").alias("product_name"),
            F.lit(None).cast("string").alias("category"),
            F.lit(None).cast("string").alias("brand"),
            F.lit(None).cast(MONEY).alias("list_price"),
            F.lit(False).alias("is_known"),
        )
    )
    return (
        known.unionByName(unknown)
        .withColumn("updated_run_id", F.lit(run_id))
        .select(*[F.col(f.name).cast(f.dataType) for f in SILVER["products"].fields])
    )
