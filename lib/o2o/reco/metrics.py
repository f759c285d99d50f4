"""Ranking metrics at k (precision, recall, NDCG, MAP) and rating errors, computed with DataFrame operations."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Window

RANKING_METRICS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k")


def _inverse_log_discount(position: F.Column) -> F.Column:
    return F.lit(1.0) / F.log2(position + F.lit(1.0))


def per_customer_ranking(recommended: DataFrame, relevant: DataFrame, k: int) -> DataFrame:
    """Per customer of `relevant`: hits, precision@k, recall@k, NDCG@k and average precision@k.

    recommended: customer_key, sku, rank (1 = best); relevant: customer_key, sku.
    Definitions (as Spark's RankingMetrics): precision = hits / k; recall = hits / |relevant|;
    NDCG = sum over hits of 1/log2(rank+1), divided by the same sum for ranks 1..min(|relevant|, k);
    AP = sum over hits at rank r of (hits up to r) / r, divided by min(|relevant|, k).
    A customer without recommendations scores 0.
    """
    truth = relevant.select("customer_key", "sku").distinct()
    hits = (
        recommended.where(F.col("rank") <= k)
        .select("customer_key", "sku", "rank")
        .join(truth, ["customer_key", "sku"])
        .withColumn("hits_so_far", F.row_number().over(Window.partitionBy("customer_key").orderBy("rank")))
        .groupBy("customer_key")
        .agg(
            F.count(F.lit(1)).alias("hits"),
            F.sum(_inverse_log_discount(F.col("rank"))).alias("dcg"),
            F.sum(F.col("hits_so_far") / F.col("rank")).alias("precision_sum"),
        )
    )
    ideal_length = F.least(F.col("relevant_items"), F.lit(k))
    return (
        truth.groupBy("customer_key")
        .agg(F.count(F.lit(1)).alias("relevant_items"))
        .join(hits, "customer_key", "left")
        .fillna(0, subset=["hits", "dcg", "precision_sum"])
        .withColumn(
            "idcg",
            F.aggregate(
                F.sequence(F.lit(1), ideal_length),
                F.lit(0.0),
                lambda total, position: total + _inverse_log_discount(position),
            ),
        )
        .select(
            "customer_key",
            "hits",
            (F.col("hits") / F.lit(float(k))).alias("precision_at_k"),
            (F.col("hits") / F.col("relevant_items")).alias("recall_at_k"),
            (F.col("dcg") / F.col("idcg")).alias("ndcg_at_k"),
            (F.col("precision_sum") / ideal_length).alias("map_at_k"),
        )
    )


def ranking_metrics(recommended: DataFrame, relevant: DataFrame, k: int) -> DataFrame:
    """One row: customers evaluated and the mean precision@k, recall@k, NDCG@k and MAP@k over them."""
    return per_customer_ranking(recommended, relevant, k).agg(
        F.count(F.lit(1)).alias("customers"),
        *[F.coalesce(F.avg(name), F.lit(0.0)).alias(name) for name in RANKING_METRICS],
    )


def rating_errors(predictions: DataFrame, label: str = "rating", prediction: str = "prediction") -> DataFrame:
    """One row: rows scored, RMSE and MAE of `prediction` against `label`."""
    error = F.col(prediction) - F.col(label)
    return predictions.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sqrt(F.avg(error * error)).alias("rmse"),
        F.avg(F.abs(error)).alias("mae"),
    )


def format_table(rows: list[dict], columns: tuple[str, ...]) -> str:
    """A plain-text table of metric rows (numbers with 4 decimals) for logs and the console."""

    def cell(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [
        max(len(c), *(len(line[i]) for line in body)) if body else len(c) for i, c in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in body]
    return "\n".join(lines)
