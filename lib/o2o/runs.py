"""Run bookkeeping: what a stage reports, and the ops.pipeline_runs log every stage run appends to."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from pyspark.sql import SparkSession

from o2o import lake
from o2o.config import Config
from o2o.contracts import OPS
from o2o.frames import local_frame

RUNS_TABLE = "ops.pipeline_runs"


@dataclass
class StageResult:
    """What one stage run read, wrote and rejected."""

    stage: str
    input_versions: dict[str, int | None] = field(default_factory=dict)
    output_versions: dict[str, int | None] = field(default_factory=dict)
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    details: dict = field(default_factory=dict)
    status: str = "succeeded"


def progress(stage: str, message: str) -> None:
    """One progress line on the console (and in a scheduler's task log): `HH:MM:SS [stage] message`.

    The clock (local time) shows where a long stage spends its time: the gap between two lines.
    """
    print(f"{datetime.now():%H:%M:%S} [{stage}] {message}", flush=True)


def new_run_id(stage: str = "run") -> str:
    """A unique, sortable run id: UTC time plus a random suffix."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{stage}-{uuid.uuid4().hex[:8]}"


def record_run(
    spark: SparkSession,
    cfg: Config,
    run_id: str,
    stage: str,
    as_of: date,
    started_at: datetime,
    result: StageResult | None,
    error: str | None = None,
) -> None:
    """Append one row to ops.pipeline_runs (a failed run is recorded with its error)."""
    finished_at = datetime.now(timezone.utc)
    status = "failed" if error else (result.status if result else "succeeded")
    row = (
        run_id,
        stage,
        as_of,
        cfg.env,
        status,
        started_at.replace(tzinfo=None),
        finished_at.replace(tzinfo=None),
        (finished_at - started_at).total_seconds(),
        json.dumps(result.input_versions if result else {}, sort_keys=True),
        json.dumps(result.output_versions if result else {}, sort_keys=True),
        result.rows_in if result else 0,
        result.rows_out if result else 0,
        result.rows_rejected if result else 0,
        json.dumps(result.details if result else {}, sort_keys=True, default=str),
        error,
    )
    # Timestamps are naive UTC; the session time zone is UTC.
    lake.ensure_table(spark, cfg, RUNS_TABLE, OPS["pipeline_runs"])
    lake.append(local_frame(spark, [row], OPS["pipeline_runs"]), cfg, RUNS_TABLE)


def last_successful_run(spark: SparkSession, cfg: Config, stage: str):
    """The newest succeeded row of a stage in ops.pipeline_runs, or None (one row; bounded)."""
    if not lake.exists(spark, cfg, RUNS_TABLE):
        return None
    return (
        lake.read(spark, cfg, RUNS_TABLE)
        .where(f"stage = '{stage}' AND status = 'succeeded'")
        .orderBy("finished_at", ascending=False)
        .head()
    )
