"""The whole pipeline from landing files: seconds, rows per second, gate share and peak memory per stage, then one more day.

Landing files come from the generator with the customer count that gives the requested order lines over
DAYS days (LINES_PER_CUSTOMER_DAY, read off the default sample's manifest). Every stage runs exactly as
`o2o run <stage>` does (`o2o.pipeline.run_stage`), in the bench's one warm session. Then one more day of
files is generated (same seed: the earlier days' files keep their bytes) and bronze, silver and gold run
again for it: their time against the full load's is the incremental ratio of issue #8.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from pyspark.sql import SparkSession

from gold_bench import timed_gates
from measure import Stopwatch, measured
from o2o import quality
from o2o.config import Config
from o2o.pipeline import STAGE_NAMES, run_stage
from o2o.sources.generator import MANIFEST, generate

DAYS = 90
SEED = 42
# The default sample (20,000 customers, 90 days) holds 171,180 order lines: its manifest's expected_order_lines.
LINES_PER_CUSTOMER_DAY = 171_180 / (20_000 * 90)
INCREMENTAL_STAGES = ("bronze", "silver", "gold")


def customers_for(order_lines: int) -> int:
    """Customers whose DAYS days of activity hold about `order_lines` order lines."""
    return max(10, round(order_lines / (LINES_PER_CUSTOMER_DAY * DAYS)))


def _landing_records(landing: Path) -> dict:
    manifest = json.loads((landing / MANIFEST).read_text(encoding="utf-8"))
    return {
        "order_lines": manifest["orders"]["expected_order_lines"],
        "landing_records": sum(
            entry["records"] for feed in manifest["feeds"].values() for entry in feed["files"]
        ),
    }


@contextmanager
def timed_gate_inputs() -> Iterator[list[float]]:
    """Seconds each quality gate spent computing the frame it checks (its checkpoint), inside the block.

    Bronze and recommend hand the gate a frame not yet computed, so the gate's time includes work the
    stage needs anyway (parsing the files, scoring); this is the part to take out to get the checks' cost.
    """
    calls: list[float] = []
    original = quality.checkpointed

    @contextmanager
    def checkpointed(df):
        started = time.perf_counter()
        with original(df) as frame:  # the checkpoint is eager: the frame is computed on entering
            calls.append(time.perf_counter() - started)
            yield frame

    quality.checkpointed = checkpointed
    try:
        yield calls
    finally:
        quality.checkpointed = original


def _run_stage(spark: SparkSession, cfg: Config, stage: str, as_of) -> dict:
    """One stage as `o2o run` runs it: seconds, rows, rows per second, time inside quality gates, peak memory.

    `gate_check_seconds` is the gates' time minus computing their inputs; bronze gates its feeds in parallel
    threads, so its gate times are summed over threads and can exceed the stage's wall-clock time.
    """
    with timed_gates() as gates, timed_gate_inputs() as inputs:
        result, cost = measured(lambda: run_stage(spark, cfg, stage, as_of))
    gate_seconds = sum(seconds for _, seconds in gates)
    check_seconds = max(gate_seconds - sum(inputs), 0.0)
    rows = max(result.rows_in, result.rows_out)
    return {
        **cost,
        "rows_in": result.rows_in,
        "rows_out": result.rows_out,
        "rows_rejected": result.rows_rejected,
        "rows_per_second": round(rows / cost["seconds"]) if cost["seconds"] else None,
        "gate_seconds": round(gate_seconds, 3),
        "gate_check_seconds": round(check_seconds, 3),
        "gate_share": round(check_seconds / cost["seconds"], 4) if cost["seconds"] else None,
    }


@contextmanager
def gates_off() -> Iterator[None]:
    """Inside the block every quality gate passes without checking anything (a baseline, never for real runs)."""
    original = quality.gate
    quality.gate = lambda *args, **kwargs: None
    try:
        yield
    finally:
        quality.gate = original


def _bronze_gate_share(spark: SparkSession, cfg: Config, root: Path, as_of, with_gates: dict) -> dict:
    """Bronze's gate share in wall-clock terms: the same landing files into a scratch lake without gates.

    Bronze gates its feeds in parallel threads, and Great Expectations runs one validation at a time, so
    time inside its gates summed over threads counts waiting and overlaps the other feeds' work. The
    stage's time with gates minus without is what the gates cost the run.
    """
    scratch = cfg.replace(lake={"root": str(root / "lake_without_gates")})
    with gates_off():
        _, cost = measured(lambda: run_stage(spark, scratch, "bronze", as_of))
    shutil.rmtree(root / "lake_without_gates", ignore_errors=True)
    added = with_gates["seconds"] - cost["seconds"]
    return {
        "gate_share_summed_over_threads": with_gates["gate_share"],
        "seconds_without_gates": cost["seconds"],
        "gate_share": round(added / with_gates["seconds"], 4) if with_gates["seconds"] else None,
    }


def warm_up(spark: SparkSession, cfg: Config, order_lines: int, work: Path) -> float:
    """An untimed first pipeline on a small scale, so the measured scales do not carry the JVM's first-use costs
    (class loading, JIT, the first Great Expectations context); returns its seconds for the record."""
    with Stopwatch() as watch:
        bench_scale(spark, cfg, order_lines, work)
    return round(watch.seconds, 3)


def _fresh_landing(cfg: Config, order_lines: int, root: Path) -> tuple[Config, dict]:
    """An empty lake under `root` and DAYS days of generated landing files for `order_lines`; config and sizes."""
    shutil.rmtree(root, ignore_errors=True)  # every measured run is a first load into an empty lake
    landing = root / "landing"
    cfg = cfg.replace(
        lake={"root": str(root / "lake"), "landing": str(landing), "reports": "", "checkpoints": ""},
        generator={"days": DAYS + 1},  # the plan of late and re-sent files covers the extra day too
    )
    customers = customers_for(order_lines)
    _, generation = measured(lambda: generate(cfg, landing, customers=customers, days=DAYS, seed=SEED))
    sizes = {
        **_landing_records(landing),
        "customers": customers,
        "days": DAYS,
        "generation_seconds": generation["seconds"],
    }
    return cfg, sizes


def bench_bronze(spark: SparkSession, cfg: Config, order_lines: int, work: Path) -> dict:
    """Bronze alone on DAYS days of files for `order_lines`: with its gates, then without (wall-clock share)."""
    root = work / f"bronze_{order_lines}"
    cfg, sizes = _fresh_landing(cfg, order_lines, root)
    as_of = cfg.generator.start_date + timedelta(days=DAYS - 1)
    stage = _run_stage(spark, cfg, "bronze", as_of)
    stage.update(_bronze_gate_share(spark, cfg, root, as_of, stage))
    shutil.rmtree(root, ignore_errors=True)
    return {"order_lines_requested": order_lines, **sizes, "bronze": stage}


def bench_scale(spark: SparkSession, cfg: Config, order_lines: int, work: Path) -> dict:
    """Generate DAYS days for `order_lines`, run every stage (full load), then one more day through gold."""
    root = work / f"pipeline_{order_lines}"
    cfg, sizes = _fresh_landing(cfg, order_lines, root)
    landing = root / "landing"
    customers = sizes["customers"]
    as_of = cfg.generator.start_date + timedelta(days=DAYS - 1)
    full = {"bronze": _run_stage(spark, cfg, "bronze", as_of)}
    # The pass without gates follows at once: after the later stages, the landing files had left the page
    # cache and that pass, not the gates, cost 2.5 times bronze's time at 5M lines.
    full["bronze"].update(_bronze_gate_share(spark, cfg, root, as_of, full["bronze"]))
    full.update({stage: _run_stage(spark, cfg, stage, as_of) for stage in STAGE_NAMES if stage != "bronze"})

    _, day_generation = measured(
        lambda: generate(cfg, landing, customers=customers, days=DAYS + 1, seed=SEED, first_day=DAYS)
    )
    next_day = as_of + timedelta(days=1)
    incremental = {stage: _run_stage(spark, cfg, stage, next_day) for stage in INCREMENTAL_STAGES}
    silver_gold_full = full["silver"]["seconds"] + full["gold"]["seconds"]
    silver_gold_day = incremental["silver"]["seconds"] + incremental["gold"]["seconds"]
    shutil.rmtree(root, ignore_errors=True)
    return {
        "order_lines_requested": order_lines,
        **sizes,
        "stages": full,
        "pipeline_seconds": round(sum(stage["seconds"] for stage in full.values()), 3),
        "incremental_day": {
            "generation_seconds": day_generation["seconds"],
            "stages": incremental,
            "silver_gold_seconds": round(silver_gold_day, 3),
            "silver_gold_full_load_seconds": round(silver_gold_full, 3),
            "ratio_to_full_load": round(silver_gold_day / silver_gold_full, 4),
        },
    }


def exponents(scales: list[dict]) -> dict:
    """Per stage, the slope of log(seconds) against log(order lines) between consecutive scales (1.0 = linear)."""
    found: dict = {}
    for small, large in zip(scales, scales[1:], strict=False):
        growth = math.log(large["order_lines"] / small["order_lines"])
        found[f"{small['order_lines']}->{large['order_lines']}"] = {
            stage: round(
                math.log(large["stages"][stage]["seconds"] / small["stages"][stage]["seconds"]) / growth, 3
            )
            for stage in STAGE_NAMES
        }
    return found
