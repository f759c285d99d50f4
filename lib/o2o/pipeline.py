"""The stage graph: stages in order, what each reads and writes, and running them with run bookkeeping."""

from __future__ import annotations

import gc
import importlib
import time
import traceback
from dataclasses import dataclass
from datetime import date, datetime, timezone

from pyspark.sql import SparkSession

from o2o import quality
from o2o.config import Config
from o2o.runs import StageResult, new_run_id, progress, record_run


@dataclass(frozen=True)
class Stage:
    """One stage: the module whose `run(spark, cfg, as_of, run_id, accept)` it calls, its inputs and outputs."""

    name: str
    module: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    gate: str


STAGES: tuple[Stage, ...] = (
    Stage(
        "bronze",
        "o2o.bronze.ingest",
        reads=("landing/*",),
        writes=("bronze.<feed>", "ops.bronze_files"),
        gate="bronze suites on the new rows of each feed, before they are appended",
    ),
    Stage(
        "silver",
        "o2o.silver.stage",
        reads=("bronze.<feed>",),
        writes=(
            "silver.customers",
            "silver.customer_identity",
            "silver.customer_merges",
            "silver.products",
            "silver.orders",
            "silver.order_lines",
            "silver.interactions",
            "silver.identity_edges",
            "silver.quarantine",
            "ops.silver_watermarks",
        ),
        gate="silver suites on the rows about to be merged",
    ),
    Stage(
        "gold",
        "o2o.gold.stage",
        reads=("silver.orders", "silver.order_lines", "silver.customers"),
        writes=(
            "gold.customer_rfm",
            "gold.segment_moves",
            "gold.segment_move_customers",
            "gold.channel_kpis",
            "gold.segment_targets",
            "gold.campaign_effect",
        ),
        gate="gold suites on each snapshot before it replaces the as-of partition",
    ),
    Stage(
        "train",
        "o2o.reco.train",
        reads=("silver.interactions", "gold.customer_rfm"),
        writes=("ops.models", "gold.model_metrics"),
        gate="model metrics recorded next to baselines",
    ),
    Stage(
        "recommend",
        "o2o.reco.recommend",
        reads=("ops.models", "silver.interactions", "gold.customer_rfm"),
        writes=("gold.recommendations",),
        gate="recommendation suite before publishing",
    ),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


class StageFailed(RuntimeError):
    """A stage failed; downstream stages were not run."""


def producer(table: str) -> str | None:
    """The stage that writes `table`; None for the bookkeeping every stage appends to (runs, quality results)."""
    for stage in STAGES:
        for written in stage.writes:
            if table == written or (
                written.endswith(".<feed>") and table.startswith(written[: -len("<feed>")])
            ):
                return stage.name
    return None


def stage_by_name(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ValueError(f"unknown stage '{name}'; stages are: {', '.join(STAGE_NAMES)}")


def _release_stage_frames() -> None:
    """Collect the finished stage's Python reference cycles, so the JVM can free what they kept alive.

    DataFrames caught in cycles (PySpark and Great Expectations objects make some) keep their JVM plans,
    broadcast relations and cached blocks reachable until Python's cycle collector runs, which may be
    stages later. In one demo session the live JVM heap after gold was 1.23 GB without this, 0.63 GB with
    it, and recommend then ran out of the 2 GB heap.
    """
    gc.collect()


def run_stage(
    spark: SparkSession,
    cfg: Config,
    name: str,
    as_of: date,
    run_id: str | None = None,
    accept: tuple[str, ...] = (),
) -> StageResult:
    """Run one stage and append its row to ops.pipeline_runs, succeeded or failed (then re-raise)."""
    stage = stage_by_name(name)
    run_id = run_id or new_run_id(name)
    module = importlib.import_module(stage.module)
    started_at = datetime.now(timezone.utc)
    clock = time.perf_counter()
    progress(name, f"run {run_id} as of {as_of.isoformat()} ...")
    try:
        with quality.batched_results(spark, cfg):
            result = module.run(spark, cfg, as_of, run_id, accept=accept)
    except Exception as exc:
        _release_stage_frames()
        record_run(spark, cfg, run_id, name, as_of, started_at, None, error=f"{type(exc).__name__}: {exc}")
        progress(name, f"FAILED after {time.perf_counter() - clock:.1f}s: {exc}")
        raise
    _release_stage_frames()
    record_run(spark, cfg, run_id, name, as_of, started_at, result)
    progress(
        name,
        f"{result.status} in {time.perf_counter() - clock:.1f}s: rows in {result.rows_in:,}, "
        f"out {result.rows_out:,}, rejected {result.rows_rejected:,}",
    )
    return result


def run_pipeline(
    spark: SparkSession,
    cfg: Config,
    as_of: date,
    stages: tuple[str, ...] = STAGE_NAMES,
    accept: tuple[str, ...] = (),
) -> dict[str, StageResult]:
    """Run the stages in order; the first failure stops the run, so nothing downstream sees bad data."""
    results: dict[str, StageResult] = {}
    for name in stages:
        try:
            results[name] = run_stage(spark, cfg, name, as_of, accept=accept)
        except Exception as exc:
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            skipped = [s for s in stages if s not in results and s != name]
            raise StageFailed(
                f"stage '{name}' failed: {detail}" + (f"; not run: {', '.join(skipped)}" if skipped else "")
            ) from exc
    return results
