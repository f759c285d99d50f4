"""RFM at one scale: the project's gold code on Spark next to pandas and DuckDB on the same Parquet, timed and cross-checked."""

from __future__ import annotations

import os
from datetime import date, timedelta

import pandas as pd
import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from measure import SparkJobs, Stopwatch, measured
from o2o.gold.rfm import customer_values, order_facts, score_rfm
from rfm_alternatives import RESULT_COLUMNS, duckdb_rfm, pandas_rfm
from synthetic_orders import OrderData

VALUE_COLUMNS = ("recency_days", "frequency", "monetary_cents")
SCORE_COLUMNS = ("r_score", "f_score", "m_score")
PLAN_MARKERS = {
    "parquet_scans": "Scan parquet",
    "shuffles": "Exchange hashpartitioning",
    "broadcasts": "BroadcastExchange",
    "reused_exchanges": "ReusedExchange",
}


def customer_values_of(spark: SparkSession, data: OrderData) -> DataFrame:
    """The gold code's customer values (R, F, M and the omnichannel facts) from the Parquet folders."""
    as_of = date.fromisoformat(data.as_of)
    orders = spark.read.parquet(data.orders_path)
    lines = spark.read.parquet(data.order_lines_path)
    return customer_values(order_facts(orders, lines, as_of), as_of, data.lookback_days)


def spark_rfm(spark: SparkSession, data: OrderData) -> DataFrame:
    """gold.customer_rfm's values and scores from the Parquet folders, with the project's own transforms."""
    return score_rfm(customer_values_of(spark, data))


def run_spark_rfm(spark: SparkSession, data: OrderData) -> None:
    """The timed Spark run, as the gold stage computes RFM: the customer values held in memory once (scoring
    reads them twice: to rank and to attach the scores), then scored into the no-op sink."""
    values = customer_values_of(spark, data).cache()
    try:
        force(score_rfm(values))
    finally:
        values.unpersist()


LEAN_SQL = """
WITH amounts AS (
    SELECT order_id, SUM(amount) AS net_amount, BOOL_OR(quantity > 0) AS is_purchase
    FROM {order_lines}
    GROUP BY order_id
), facts AS (
    SELECT o.customer_key, TO_DATE(o.order_ts) AS day, a.net_amount, a.is_purchase
    FROM {orders} AS o
    JOIN amounts AS a USING (order_id)
    WHERE o.order_ts < CAST({end_day} AS TIMESTAMP)
      AND NOT COALESCE(o.status = 'cancelled', FALSE)
      AND o.customer_key IS NOT NULL
), customer_values AS (
    SELECT
        customer_key,
        DATEDIFF(CAST({as_of} AS DATE), MAX(day) FILTER (WHERE is_purchase)) AS recency_days,
        COUNT(*) FILTER (WHERE is_purchase) AS frequency,
        CAST(SUM(net_amount) * 100 AS BIGINT) AS monetary_cents
    FROM facts
    WHERE day BETWEEN CAST({start_day} AS DATE) AND CAST({as_of} AS DATE)
    GROUP BY customer_key
    HAVING COUNT(*) FILTER (WHERE is_purchase) > 0
)
SELECT
    customer_key,
    recency_days,
    frequency,
    monetary_cents,
    1 + (5 * (RANK() OVER (ORDER BY recency_days DESC) - 1)) DIV COUNT(*) OVER () AS r_score,
    1 + (5 * (RANK() OVER (ORDER BY frequency) - 1)) DIV COUNT(*) OVER () AS f_score,
    1 + (5 * (RANK() OVER (ORDER BY monetary_cents) - 1)) DIV COUNT(*) OVER () AS m_score
FROM customer_values
"""


def lean_spark_rfm(spark: SparkSession, data: OrderData) -> DataFrame:
    """Diagnostic, not the project's code: DuckDB's statement run by Spark SQL (R, F, M and scores only;
    its unpartitioned windows put the scoring on one core, fine for one row per customer)."""
    as_of = date.fromisoformat(data.as_of)
    return spark.sql(
        LEAN_SQL,
        as_of=as_of.isoformat(),
        start_day=(as_of - timedelta(days=data.lookback_days - 1)).isoformat(),
        end_day=(as_of + timedelta(days=1)).isoformat(),
        orders=spark.read.parquet(data.orders_path),
        order_lines=spark.read.parquet(data.order_lines_path),
    )


def comparable(scored: DataFrame) -> DataFrame:
    """The columns the alternatives produce, money in integer cents."""
    return scored.select(
        "customer_key",
        "recency_days",
        "frequency",
        (F.col("monetary") * 100).cast("long").alias("monetary_cents"),
        "r_score",
        "f_score",
        "m_score",
    )


def force(frame: DataFrame) -> None:
    """Compute every row and column of the frame and throw the result away (the no-op sink)."""
    frame.write.format("noop").mode("overwrite").save()


def mismatches(reference: pd.DataFrame, other: pd.DataFrame) -> dict:
    """Customers present on one side only, and per column the customers whose values differ (exact equality)."""
    merged = reference.merge(
        other, on="customer_key", how="outer", suffixes=("_ref", "_other"), indicator=True
    )
    on_both = merged["_merge"] == "both"
    differs = pd.DataFrame(
        {
            column: on_both & (merged[f"{column}_ref"] != merged[f"{column}_other"])
            for column in (*VALUE_COLUMNS, *SCORE_COLUMNS)
        }
    )
    only_one_side = int((~on_both).sum())
    return {
        "customers_compared": int(on_both.sum()),
        "only_on_one_side": only_one_side,
        "rfm_mismatched_customers": only_one_side + int(differs[list(VALUE_COLUMNS)].any(axis=1).sum()),
        "score_mismatched_customers": int(differs[list(SCORE_COLUMNS)].any(axis=1).sum()),
        "per_column": {column: int(differs[column].sum()) for column in differs.columns},
    }


def plan_operators(frame: DataFrame) -> dict:
    """How often the executed plan reads each input and shuffles: evidence of recomputed subtrees."""
    plan = frame._jdf.queryExecution().executedPlan().toString()
    return {name: plan.count(marker) for name, marker in PLAN_MARKERS.items()}


def profile(spark: SparkSession, data: OrderData) -> dict:
    """Where the project's RFM spends its time: each transform on its own, and scoring over cached values."""
    as_of = date.fromisoformat(data.as_of)
    orders = spark.read.parquet(data.orders_path)
    lines = spark.read.parquet(data.order_lines_path)
    steps = {
        "order_facts": lambda: order_facts(orders, lines, as_of),
        "customer_values": lambda: customer_values_of(spark, data),
        "score_rfm (whole chain)": lambda: spark_rfm(spark, data),
    }
    result = {}
    for name, build in steps.items():
        frame = build()
        with SparkJobs(spark, f"profile {name}") as jobs, Stopwatch() as watch:
            force(frame)
        result[name] = {"seconds": round(watch.seconds, 3), **jobs.counts, **plan_operators(frame)}
    values = steps["customer_values"]().cache()
    values.count()
    scored = score_rfm(values)
    with SparkJobs(spark, "profile score_rfm over cached values") as jobs, Stopwatch() as watch:
        force(scored)
    result["score_rfm over cached values"] = {"seconds": round(watch.seconds, 3), **jobs.counts}
    values.unpersist()
    return result


def bench_scale(spark: SparkSession, data: OrderData) -> dict:
    """Times of Spark (project code), pandas and DuckDB on one scale, their ratios and the agreement check."""
    as_of = date.fromisoformat(data.as_of)
    threads = os.cpu_count() or 2
    with SparkJobs(spark, f"rfm {data.lines}") as jobs:
        _, spark_run = measured(lambda: run_spark_rfm(spark, data))
    spark_run.update(jobs.counts)
    pandas_result, pandas_run = measured(
        lambda: pandas_rfm(data.orders_path, data.order_lines_path, as_of, data.lookback_days)
    )
    duckdb_result, duckdb_run = measured(
        lambda: duckdb_rfm(data.orders_path, data.order_lines_path, as_of, data.lookback_days, threads),
    )
    with SparkJobs(spark, f"lean rfm {data.lines}") as jobs:
        _, lean_run = measured(lambda: force(lean_spark_rfm(spark, data)))
    lean_run.update(jobs.counts)
    # Untimed: the Spark values once more, collected for the check (one row per customer; bounded by the scale).
    spark_result = comparable(spark_rfm(spark, data)).toPandas()[RESULT_COLUMNS]
    lean_result = lean_spark_rfm(spark, data).toPandas()[RESULT_COLUMNS]
    return {
        "order_lines": data.lines,
        "orders": data.orders,
        "customers_scored": len(spark_result),
        "spark": spark_run,
        "pandas": pandas_run,
        "duckdb": duckdb_run,
        "spark_over_duckdb": round(spark_run["seconds"] / duckdb_run["seconds"], 2),
        "spark_over_pandas": round(spark_run["seconds"] / pandas_run["seconds"], 2),
        "lean_spark_sql": lean_run,
        "lean_spark_sql_over_duckdb": round(lean_run["seconds"] / duckdb_run["seconds"], 2),
        "check": {
            "pandas_vs_spark": mismatches(spark_result, pandas_result),
            "duckdb_vs_spark": mismatches(spark_result, duckdb_result),
            "lean_spark_sql_vs_spark": mismatches(spark_result, lean_result),
        },
    }
