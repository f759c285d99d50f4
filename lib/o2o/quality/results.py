"""The ops.dq_results Delta table: one row per expectation result of every gate run."""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import SparkSession

from o2o import lake
from o2o.config import Config
from o2o.contracts import OPS
from o2o.frames import local_frame
from o2o.quality.report import GateReport

RESULTS_TABLE = "ops.dq_results"


def result_rows(report: GateReport) -> list[tuple]:
    """The report as ops.dq_results rows (one per expectation)."""
    return [
        (
            report.run_id,
            report.stage,
            report.table,
            report.table_version,
            report.as_of,
            result.name,
            result.expectation_type,
            result.column,
            result.severity,
            result.success,
            _text(result.observed_value if result.unexpected_count is None else result.observed),
            result.threshold,
            result.element_count,
            result.unexpected_count,
            result.unexpected_percent,
            result.accepted,
            result.error,
            report.checked_at,
        )
        for result in report.results
    ]


def append_results(spark: SparkSession, cfg: Config, reports: list[GateReport]) -> None:
    """Append the reports' results to ops.dq_results in one commit (table created on first use)."""
    rows = [row for report in reports for row in result_rows(report)]
    if not rows:
        return
    lake.ensure_table(spark, cfg, RESULTS_TABLE, OPS["dq_results"])
    # One row per expectation of a stage's suites: a few hundred rows at most.
    lake.append(local_frame(spark, rows, OPS["dq_results"]), cfg, RESULTS_TABLE)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
