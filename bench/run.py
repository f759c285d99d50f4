"""`make bench`: start-up, ALS vs implicit, MovieLens ALS vs Surprise, RFM vs pandas and DuckDB, the gold stage and its
gates, bronze with and without its gates, the whole pipeline from landing files.

Usage: .venv/bin/python bench/run.py [--scales 100000,1000000,5000000] [--parts startup,als,movielens,rfm,gold,bronze,pipeline]
       [--pipeline-scales 100000,1000000,5000000] [--bronze-scales 100000,1000000] [--budget-minutes 35] [--als-events 500000,5000000] [--folds 1,2,3,4,5]
Writes bench/results/<YYYY-MM-DD>.json and .md (today's date); exits non-zero when a part failed.
Results go to bench/results/. A scale whose estimated time would overrun what is left of the budget is
skipped and listed as skipped: an RFM scale's estimate is extrapolated from the scales before, a gold, bronze
or pipeline scale's is the scale before grown in proportion to the lines.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil
from pyspark.sql import SparkSession

import als_bench
import gold_bench
import movielens_bench
import pipeline_bench
import results_files
import rfm_bench
import startup_bench
import synthetic_orders
import targets
from measure import OtherProcessesCpu, PeakMemory, Stopwatch
from o2o.config import Config, load_config
from o2o.spark import get_spark, java_major_version

PROJECT = Path(__file__).resolve().parents[1]
PARTS = ("startup", "als", "movielens", "rfm", "gold", "bronze", "pipeline")
DEFAULT_SCALES = "100000,1000000,5000000"
AS_OF = date(2026, 6, 30)
PACKAGES = (
    "pyspark",
    "delta-spark",
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "implicit",
    "scikit-surprise",
    "psutil",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default=DEFAULT_SCALES, help="RFM order-line counts, comma-separated")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {','.join(PARTS)}")
    parser.add_argument(
        "--pipeline-scales",
        default=DEFAULT_SCALES,
        help="order lines of the whole-pipeline runs, comma-separated",
    )
    parser.add_argument(
        "--bronze-scales",
        default="100000,1000000",
        help="order lines of the bronze-with-and-without-gates runs (its gate target is at 1M), comma-separated",
    )
    parser.add_argument(
        "--pipeline-warmup-lines",
        type=int,
        default=2_000,
        help="order lines of an untimed first pipeline run (0: none)",
    )
    parser.add_argument("--budget-minutes", type=float, default=35.0)
    parser.add_argument(
        "--als-events",
        default="500000,5000000",
        help="synthetic interactions of each ALS comparison, comma-separated (customers = events / 50)",
    )
    parser.add_argument("--als-events-per-customer", type=int, default=50)
    parser.add_argument("--als-items", type=int, default=2_000)
    parser.add_argument("--folds", default="1,2,3,4,5", help="MovieLens 100K official folds")
    parser.add_argument("--no-profile", action="store_true", help="skip the RFM step-by-step profile")
    parser.add_argument(
        "--data-dir", default=os.environ.get("O2O_DATA_DIR", str(PROJECT.parent / "shared" / "data"))
    )
    parser.add_argument(
        "--work-dir", default=str(PROJECT / ".cache" / "bench"), help="generated Parquet (reused)"
    )
    parser.add_argument("--out", default=str(PROJECT / "bench" / "results"))
    args = parser.parse_args(argv)
    args.scales = sorted(int(n) for n in args.scales.split(","))
    args.pipeline_scales = sorted(int(n) for n in args.pipeline_scales.split(","))
    args.bronze_scales = sorted(int(n) for n in args.bronze_scales.split(","))
    args.als_events = sorted(int(n) for n in args.als_events.split(","))
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))}; choose from {','.join(PARTS)}")
    args.parts = [p for p in PARTS if p in args.parts.split(",")]
    return args


def bench_config() -> Config:
    """The local config, with Arrow for the (bounded) collections the cross-checks make."""
    return load_config(
        "local",
        conf_dir=PROJECT / "conf",
        overrides={"spark": {"extra": {"spark.sql.execution.arrow.pyspark.enabled": "true"}}},
    )


def measured_part(action: Callable[[], dict]) -> dict:
    """Run one part: its result (or the error), wall-clock seconds, the driver's peak memory, the CPU other
    processes took meanwhile, load averages."""
    load_before = os.getloadavg()
    part: dict = {}
    with OtherProcessesCpu() as others, PeakMemory() as memory, Stopwatch() as watch:
        try:
            part["result"] = action()
        except Exception as exc:  # a failed part is reported, and the run goes on to the next one
            traceback.print_exc()
            part["error"] = f"{type(exc).__name__}: {exc}"
    part.update(
        wall_seconds=round(watch.seconds, 3),
        memory=memory.summary(),
        other_processes=others.summary(),
        load_average=[load_before, os.getloadavg()],
    )
    print(f"bench: {'failed' if 'error' in part else 'done'} in {watch.seconds:.1f} s", flush=True)
    return part


def _step_seconds(scale: dict, data_cached: bool) -> float:
    return scale["bench_seconds"] + (0.0 if data_cached else scale["generation_seconds"])


def _estimate(done: list[dict], lines: int, data_cached: bool) -> float:
    """Seconds a scale should take (generation only if not on disk): the line through the last two scales run,
    or proportional to the one before when only one ran (pessimistic: Spark has a large fixed cost)."""
    last = done[-1]
    if len(done) == 1:
        return _step_seconds(last, data_cached) * lines / last["order_lines"]
    before = done[-2]
    per_line = (_step_seconds(last, data_cached) - _step_seconds(before, data_cached)) / (
        last["order_lines"] - before["order_lines"]
    )
    return _step_seconds(last, data_cached) + max(per_line, 0.0) * (lines - last["order_lines"])


def rfm_part(
    spark: SparkSession, args: argparse.Namespace, lookback: int, deadline: float, settings: dict
) -> dict:
    """Every requested RFM scale that fits the budget, smallest first, after an untimed warm-up (and profile)."""
    work = Path(args.work_dir)
    result: dict = {"as_of": AS_OF.isoformat(), "lookback_days": lookback, "scales": []}
    for lines in args.scales:
        if result["scales"]:
            cached = synthetic_orders.is_cached(work, lines, AS_OF, lookback)
            if _over_budget(deadline, settings, "RFM", lines, _estimate(result["scales"], lines, cached)):
                continue
        print(f"bench: RFM {lines:,} order lines", flush=True)
        with Stopwatch() as generation:
            data, generated = synthetic_orders.ensure(spark, work, lines, AS_OF, lookback)
        if "warm_up_seconds" not in result:
            with Stopwatch() as warm_up:
                rfm_bench.run_spark_rfm(spark, data)
            result["warm_up_seconds"] = round(warm_up.seconds, 3)
            if not args.no_profile:
                result["profile"] = {"order_lines": lines, "steps": rfm_bench.profile(spark, data)}
        with Stopwatch() as bench:
            scale = rfm_bench.bench_scale(spark, data)
        scale.update(
            generated=generated,
            generation_seconds=round(generation.seconds, 3),
            bench_seconds=round(bench.seconds, 3),
        )
        result["scales"].append(scale)
        settings["scales_run"].append(lines)
    return result


def _over_budget(deadline: float, settings: dict, part: str, lines: int, estimate: float) -> bool:
    """True (and the scale listed as skipped, with the reason) when the budget is spent or the scale's
    estimated seconds would overrun what is left of it."""
    left = deadline - time.monotonic()
    if left > 0 and estimate <= left:
        return False
    reason = f"estimated {estimate / 60:.0f} min, {max(left, 0.0) / 60:.0f} min of budget left"
    settings["scales_skipped"].append({"order_lines": lines, "part": part, "reason": reason})
    print(f"bench: {part} {lines:,} lines skipped: {reason}", flush=True)
    return True


def _within_budget(deadline: float, settings: dict, part: str, scales: list[int]) -> Iterator[int]:
    """The scales, smallest first, that fit what is left of the budget; the loop body's time at one scale,
    grown in proportion to the lines, is the next one's estimate (pessimistic: stages have fixed costs)."""
    last: tuple[int, float] | None = None
    for lines in scales:
        estimate = 0.0 if last is None else last[1] * lines / last[0]
        if _over_budget(deadline, settings, part, lines, estimate):
            continue
        started = time.monotonic()
        yield lines
        last = (lines, time.monotonic() - started)


def gold_part(
    spark: SparkSession, cfg: Config, args: argparse.Namespace, deadline: float, settings: dict
) -> dict:
    """The whole gold stage at every requested scale (smallest first) while the budget lasts; gate share of each."""
    work = Path(args.work_dir)
    result: dict = {"as_of": AS_OF.isoformat(), "scales": []}
    for lines in _within_budget(deadline, settings, "gold", args.scales):
        print(f"bench: gold stage {lines:,} order lines", flush=True)
        data, _ = synthetic_orders.ensure(spark, work, lines, AS_OF, cfg.gold.lookback_days)
        result["scales"].append(gold_bench.bench_scale(spark, cfg, data, work / f"gold_lake_{lines}"))
    return result


def bronze_part(
    spark: SparkSession, cfg: Config, args: argparse.Namespace, deadline: float, settings: dict
) -> dict:
    """Bronze alone, with and without its gates, at every bronze scale (smallest first) while the budget lasts.

    Not at 5M lines by default: that scale takes about 24 minutes (generation and two passes), which the
    pipeline part's runs use better; the pipeline part measures bronze at every scale it runs.
    """
    work = Path(args.work_dir)
    scales: list[dict] = []
    warmup = None
    if args.pipeline_warmup_lines:  # the first GX context, class loading and JIT, out of the measured runs
        print(f"bench: bronze warm-up, {args.pipeline_warmup_lines:,} order lines (untimed)", flush=True)
        warmed = pipeline_bench.bench_bronze(spark, cfg, args.pipeline_warmup_lines, work)
        warmup = warmed["bronze"]["seconds"]
    for lines in _within_budget(deadline, settings, "bronze", args.bronze_scales):
        print(f"bench: bronze with and without gates, {lines:,} order lines", flush=True)
        scales.append(pipeline_bench.bench_bronze(spark, cfg, lines, work))
    return {
        "days": pipeline_bench.DAYS,
        "warmup": {"order_lines": args.pipeline_warmup_lines, "seconds": warmup},
        "scales": scales,
    }


def pipeline_part(
    spark: SparkSession, cfg: Config, args: argparse.Namespace, deadline: float, settings: dict
) -> dict:
    """The whole pipeline from landing files at every scale that fits the budget, smallest first, and the exponents."""
    work = Path(args.work_dir)
    scales: list[dict] = []
    warmup = None
    if args.pipeline_warmup_lines:
        print(
            f"bench: whole pipeline warm-up, {args.pipeline_warmup_lines:,} order lines (untimed)", flush=True
        )
        warmup = pipeline_bench.warm_up(spark, cfg, args.pipeline_warmup_lines, work)
    for lines in _within_budget(deadline, settings, "pipeline", args.pipeline_scales):
        print(f"bench: whole pipeline, {lines:,} order lines", flush=True)
        scales.append(pipeline_bench.bench_scale(spark, cfg, lines, work))
    return {
        "days": pipeline_bench.DAYS,
        "warmup": {"order_lines": args.pipeline_warmup_lines, "seconds": warmup},
        "scales": scales,
        "exponents": pipeline_bench.exponents(scales),
    }


def versions() -> dict:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=PROJECT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts in a fixed order and write the result files; 1 if any part failed."""
    args = parse_args(argv)
    started, started_at = time.monotonic(), datetime.now().astimezone()
    deadline = started + args.budget_minutes * 60
    settings = {
        "scales_requested": args.scales,
        "bronze_scales_requested": args.bronze_scales,
        "pipeline_scales_requested": args.pipeline_scales,
        "scales_run": [],
        "scales_skipped": [],
        "budget_minutes": args.budget_minutes,
        "parts": args.parts,
        "als": {
            "events": args.als_events,
            "events_per_customer": args.als_events_per_customer,
            "items": args.als_items,
        },
        "movielens_folds": args.folds,
    }
    machine = {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "java": java_major_version(),
        "load_average_start": os.getloadavg(),
    }
    parts: dict = {}
    if "startup" in args.parts:
        print("bench: start-up (two new processes)", flush=True)
        parts["startup"] = measured_part(lambda: startup_bench.bench(PROJECT))

    cfg = bench_config()
    with Stopwatch() as session_watch:
        spark = get_spark(cfg)
    settings["main_session_start_seconds"] = round(session_watch.seconds, 3)
    if "als" in args.parts:
        print("bench: implicit ALS vs implicit", flush=True)
        parts["als"] = measured_part(
            lambda: {
                "sizes": [
                    als_bench.bench(
                        spark,
                        cfg.reco,
                        AS_OF,
                        events,
                        events // args.als_events_per_customer,
                        args.als_items,
                    )
                    for events in args.als_events
                ]
            }
        )
    if "movielens" in args.parts:
        print("bench: MovieLens 100K, ALS vs Surprise SVD", flush=True)
        folds = tuple(int(f) for f in args.folds.split(","))
        parts["movielens"] = measured_part(
            lambda: movielens_bench.compare(spark, Path(args.data_dir) / "movielens_100k", folds)
        )
    if "rfm" in args.parts:
        parts["rfm"] = measured_part(
            lambda: rfm_part(spark, args, cfg.gold.lookback_days, deadline, settings)
        )
    if "gold" in args.parts:
        parts["gold"] = measured_part(lambda: gold_part(spark, cfg, args, deadline, settings))
    if "bronze" in args.parts:
        parts["bronze"] = measured_part(lambda: bronze_part(spark, cfg, args, deadline, settings))
    if "pipeline" in args.parts:
        parts["pipeline"] = measured_part(lambda: pipeline_part(spark, cfg, args, deadline, settings))
    spark.stop()

    machine["load_average_end"] = os.getloadavg()
    results = {
        "date": started_at.date().isoformat(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git_commit": git_commit(),
        "machine": machine,
        "versions": versions(),
        "settings": settings,
        "parts": parts,
        "targets": targets.evaluate(parts),
    }
    json_path, markdown_path = results_files.write(results, Path(args.out))
    print(f"bench: wrote {json_path} and {markdown_path}")
    print(results_files.markdown(results).split("## Wall-clock")[0])
    return 1 if any("error" in part for part in parts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
