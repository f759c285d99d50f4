"""What `o2o status` shows: every table's version, rows and last write, its stage's last run, its newest gate."""

from __future__ import annotations

from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession, Window

from o2o import lake
from o2o.config import Config
from o2o.pipeline import producer
from o2o.quality import RESULTS_TABLE
from o2o.report import table_versions
from o2o.runs import RUNS_TABLE


def latest_runs(runs: DataFrame) -> DataFrame:
    """The newest row of ops.pipeline_runs per stage (by start time): stage, run_id, as_of, status, finished_at, error."""
    newest_first = Window.partitionBy("stage").orderBy(F.col("started_at").desc(), F.col("run_id").desc())
    return (
        runs.withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .select("stage", "run_id", "as_of", "status", "finished_at", "error")
    )


def latest_gates(results: DataFrame) -> DataFrame:
    """Each table's newest gate in ops.dq_results (one gate's rows share its checked_at), summed up.

    `result` is failed (a critical check failed and no operator accepted it), accepted (every critical
    failure was accepted), warnings (only warn-level checks failed) or passed.
    """
    newest = Window.partitionBy("table_name")
    failed = ~F.coalesce(F.col("success"), F.lit(False))
    accepted = F.coalesce(F.col("accepted_by_operator"), F.lit(False))
    critical = F.col("severity") == "critical"

    def count_of(condition):
        return F.sum(F.when(condition, 1).otherwise(0))

    return (
        results.withColumn("_newest", F.max("checked_at").over(newest))
        .where(F.col("checked_at") == F.col("_newest"))
        .groupBy("table_name", "checked_at")
        .agg(
            F.max("run_id").alias("run_id"),
            F.count(F.lit(1)).alias("checks"),
            count_of(failed & critical & ~accepted).alias("failed_critical"),
            count_of(failed & critical & accepted).alias("accepted"),
            count_of(failed & ~critical).alias("failed_warn"),
        )
        .withColumn(
            "result",
            F.when(F.col("failed_critical") > 0, "failed")
            .when(F.col("accepted") > 0, "accepted")
            .when(F.col("failed_warn") > 0, "warnings")
            .otherwise("passed"),
        )
    )


def gate_text(gate: dict[str, Any] | None) -> str:
    """One gate summary as a short phrase, e.g. 'passed (12 checks)' or 'failed: 2 critical of 12'."""
    if gate is None:
        return "-"
    checks = gate["checks"]
    if gate["result"] == "failed":
        return f"failed: {gate['failed_critical']} critical of {checks}"
    if gate["result"] == "accepted":
        return f"accepted: {gate['accepted']} critical failure(s) of {checks}"
    if gate["result"] == "warnings":
        return f"warnings: {gate['failed_warn']} of {checks}"
    return f"passed ({checks} checks)"


def table_health(spark: SparkSession, cfg: Config) -> list[dict[str, Any]]:
    """Per existing table: version, rows, last write, the stage that writes it, that stage's last run, newest gate."""
    runs: dict[str, dict] = {}
    if lake.exists(spark, cfg, RUNS_TABLE):
        # Bounded: one row per stage.
        runs = {r["stage"]: r.asDict() for r in latest_runs(lake.read(spark, cfg, RUNS_TABLE)).collect()}
    gates: dict[str, dict] = {}
    if lake.exists(spark, cfg, RESULTS_TABLE):
        # Bounded: one row per gated table.
        results = lake.read(spark, cfg, RESULTS_TABLE)
        gates = {r["table_name"]: r.asDict() for r in latest_gates(results).collect()}
    rows = []
    for table in table_versions(spark, cfg):
        stage = producer(table["table"])
        rows.append({**table, "stage": stage, "last_run": runs.get(stage), "gate": gates.get(table["table"])})
    return rows
