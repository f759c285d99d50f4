"""The `o2o` command: demo, generate, run, dq, status, history, recommend; and the spark-submit job entry."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from o2o.config import Config, load_config
from o2o.errors import UsageError
from o2o.pipeline import STAGE_NAMES, StageFailed, run_pipeline, run_stage


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date YYYY-MM-DD") from exc


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env", default=None, help="config environment: conf/<env>.yaml (default: $O2O_ENV or local)"
    )
    parser.add_argument("--conf-dir", default=None, help="folder holding base.yaml and <env>.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="o2o", description="Omnichannel retail lakehouse jobs")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="generate sample data, run every stage, print a summary")
    _common(demo)
    demo.add_argument("--customers", type=int, default=None)
    demo.add_argument("--days", type=int, default=None)
    demo.add_argument("--seed", type=int, default=None)
    demo.add_argument("--fresh", action="store_true", help="delete the local lake and landing folders first")

    generate = commands.add_parser("generate", help="write synthetic channel feeds into the landing folder")
    _common(generate)
    generate.add_argument("--customers", type=int, default=None)
    generate.add_argument("--days", type=int, default=None)
    generate.add_argument("--seed", type=int, default=None)
    generate.add_argument("--start-date", type=_parse_date, default=None)
    generate.add_argument("--first-day", type=int, default=0, help="generate business days [first-day, days)")
    generate.add_argument("--landing", default=None, help="landing folder (default: lake.landing)")

    run = commands.add_parser("run", help="run one stage, or all of them in order")
    _common(run)
    run.add_argument("stage", choices=(*STAGE_NAMES, "all"))
    run.add_argument("--as-of", type=_parse_date, required=True, help="business date the run is for")
    run.add_argument(
        "--accept-dq-failure",
        action="append",
        default=[],
        metavar="EXPECTATION",
        help="promote despite this critical expectation failing (logged, recorded in ops.dq_results)",
    )

    dq = commands.add_parser("dq", help="run a table's quality suite now and print the results")
    _common(dq)
    dq.add_argument("table", help="e.g. silver.orders")

    status = commands.add_parser(
        "status", help="every table: version, rows, last write, its stage's last run, its newest quality gate"
    )
    _common(status)

    history = commands.add_parser("history", help="a table's Delta commit history")
    _common(history)
    history.add_argument("table")
    history.add_argument("--limit", type=int, default=20)

    show = commands.add_parser("show", help="print rows of a table, optionally as of a version or timestamp")
    _common(show)
    show.add_argument("table")
    show.add_argument("--version", type=int, default=None)
    show.add_argument("--timestamp", default=None)
    show.add_argument("--limit", type=int, default=20)

    maintain = commands.add_parser(
        "maintain",
        help="OPTIMIZE (Z-ORDER where configured) and VACUUM every table; remove killed runs' checkpoint folders",
    )
    _common(maintain)
    maintain.add_argument(
        "--retention-hours", type=int, default=None, help="default: maintenance.vacuum_retention_hours"
    )
    maintain.add_argument("--force", action="store_true", help="allow a retention under 168 hours")

    recommend = commands.add_parser("recommend", help="one customer's recommendations")
    _common(recommend)
    recommend.add_argument("customer_key")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.env, args.conf_dir)
        return COMMANDS[args.command](cfg, args)
    except UsageError as exc:  # config, Java, a table or model not there yet, a refused option
        print(f"o2o: {exc}", file=sys.stderr)
        return 2
    except StageFailed as exc:
        print(f"o2o: {exc}", file=sys.stderr)
        # 2 as above when the operator can fix the cause (an input not there yet, a path, a setting).
        return 2 if isinstance(exc.__cause__, UsageError) else 1


def _spark(cfg: Config):
    from o2o.spark import get_spark

    return get_spark(cfg)


def cmd_generate(cfg: Config, args: argparse.Namespace) -> int:
    from o2o.sources.generator import generate

    started = time.perf_counter()
    manifest = generate(
        cfg,
        args.landing,
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        start_date=args.start_date,
        first_day=args.first_day,
    )
    print(f"generated landing feeds in {time.perf_counter() - started:.1f}s: {_manifest_line(manifest)}")
    return 0


def _manifest_line(manifest: dict) -> str:
    feeds = manifest.get("feeds", {})
    parts = [
        f"{feed} {sum(f.get('records', 0) for f in info.get('files', [])):,}" for feed, info in feeds.items()
    ]
    return ", ".join(parts) or "no feeds"


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    spark = _spark(cfg)
    accept = tuple(args.accept_dq_failure)
    if args.stage == "all":
        run_pipeline(spark, cfg, args.as_of, accept=accept)
    else:
        try:
            run_stage(spark, cfg, args.stage, args.as_of, accept=accept)
        except Exception as exc:
            raise StageFailed(f"stage '{args.stage}' failed: {exc}") from exc
    return 0


def cmd_demo(cfg: Config, args: argparse.Namespace) -> int:
    from o2o.sources.generator import generate

    started = time.perf_counter()
    if args.fresh:
        for folder in (cfg.lake.root, cfg.lake.landing):
            target = Path(cfg.resolve(folder))
            if target.exists() and "://" not in folder:
                shutil.rmtree(target)
    customers = args.customers or cfg.generator.customers
    days = args.days or cfg.generator.days
    print(f"o2o demo: {customers:,} customers over {days} days (seed {args.seed or cfg.generator.seed})")
    manifest = generate(cfg, customers=customers, days=days, seed=args.seed)
    print(f"  landing: {_manifest_line(manifest)} ({time.perf_counter() - started:.0f}s)")
    as_of = cfg.generator.start_date + timedelta(days=days - 1)
    spark = _spark(cfg)
    run_pipeline(spark, cfg, as_of)
    from o2o.report import build_report, table_versions

    tables = table_versions(spark, cfg)  # looked up once for the summary and the report
    print(summary(spark, cfg, as_of, tables))
    print(f"report: {build_report(spark, cfg, as_of, tables)} (open it in a browser)")
    print(f"demo finished in {time.perf_counter() - started:.0f}s; lake at {cfg.resolve(cfg.lake.root)}")
    return 0


def summary(spark, cfg: Config, as_of: date, tables: list[dict] | None = None) -> str:
    """A short text summary of the lake after a run: tables, last runs, quarantine reasons.

    `tables`: report.table_versions' rows when the caller already has them.
    """
    from o2o import lake
    from o2o.report import table_versions

    lines = ["", f"Lake summary as of {as_of.isoformat()}", f"{'table':<34}{'version':>8}{'rows':>12}"]
    for row in tables if tables is not None else table_versions(spark, cfg):
        lines.append(f"{row['table']:<34}{row['version']:>8}{row['rows']:>12,}")
    if lake.exists(spark, cfg, "silver.quarantine"):
        lines.append("\nQuarantine by feed and reason")
        # Bounded: one row per (feed, reason).
        for row in (
            lake.read(spark, cfg, "silver.quarantine")
            .groupBy("feed", "reason")
            .count()
            .orderBy("feed", "reason")
            .collect()
        ):
            lines.append(f"  {row['feed']:<28}{row['reason']:<24}{row['count']:>8,}")
    if lake.exists(spark, cfg, "ops.pipeline_runs"):
        lines.append("\nLast run of each stage")
        runs = lake.read(spark, cfg, "ops.pipeline_runs")
        # Bounded: one row per stage (latest finish time, joined back for that run's row).
        latest = (
            runs.groupBy("stage")
            .agg({"finished_at": "max"})
            .withColumnRenamed("max(finished_at)", "finished_at")
        )
        for row in runs.join(latest, ["stage", "finished_at"]).orderBy("finished_at").collect():
            lines.append(
                f"  {row['stage']:<10}{row['status']:<10}{row['duration_s']:>7.1f}s  in {row['rows_in']:>10,}  "
                f"out {row['rows_out']:>10,}  rejected {row['rows_rejected']:>7,}"
            )
    return "\n".join(lines)


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    from o2o import lake
    from o2o.status import gate_text, table_health

    spark = _spark(cfg)
    print(
        f"{'table':<34}{'version':>8}{'rows':>12}  {'last write (UTC)':<20} {'stage':<10} "
        f"{'its last run':<22} newest quality gate"
    )
    health = table_health(spark, cfg)
    if not health:
        print(
            f"(no tables yet under {cfg.resolve(cfg.lake.root)}: run `o2o demo`, or `o2o run bronze --as-of ...`)"
        )
    for row in health:
        run = row["last_run"]
        run_text = f"{run['status']} {run['as_of']}" if run else "-"
        written = row["written"].strftime("%Y-%m-%d %H:%M:%S") if row["written"] else "-"
        print(
            f"{row['table']:<34}{row['version']:>8}{row['rows']:>12,}  {written:<20} {row['stage'] or '-':<10} "
            f"{run_text:<22} {gate_text(row['gate'])}"
        )
    if lake.exists(spark, cfg, "ops.pipeline_runs"):
        print("\nrecent runs")
        (
            lake.read(spark, cfg, "ops.pipeline_runs")
            .orderBy("finished_at", ascending=False)
            .select("run_id", "stage", "as_of", "status", "duration_s", "rows_out", "rows_rejected", "error")
            .show(10, truncate=60)
        )
    return 0


def cmd_history(cfg: Config, args: argparse.Namespace) -> int:
    from o2o import lake

    spark = _spark(cfg)
    lake.require(spark, cfg, args.table)
    lake.history(spark, cfg, args.table, args.limit).select(
        "version", "timestamp", "operation", "operationParameters", "operationMetrics"
    ).show(args.limit, truncate=80)
    return 0


def cmd_show(cfg: Config, args: argparse.Namespace) -> int:
    from pyspark.errors import AnalysisException

    from o2o import lake

    spark = _spark(cfg)
    lake.require(spark, cfg, args.table)
    try:
        rows = lake.read(spark, cfg, args.table, version=args.version, timestamp=args.timestamp)
    except AnalysisException as exc:  # a version or time the table's history does not hold
        # Delta's message spans lines and ends with the SQLSTATE and, at times, a JVM stack trace.
        message = " ".join(str(exc).split("SQLSTATE")[0].split("JVM stacktrace")[0].split())
        print(f"o2o: {args.table}: {message}", file=sys.stderr)
        return 2
    rows.show(args.limit, truncate=40)
    return 0


def cmd_dq(cfg: Config, args: argparse.Namespace) -> int:
    from o2o import quality

    spark = _spark(cfg)
    report = quality.run_suite_on_table(spark, cfg, args.table)
    print(quality.format_report(report))
    return 0 if report.success else 1


def cmd_recommend(cfg: Config, args: argparse.Namespace) -> int:
    from o2o.reco.recommend import recommend_for

    spark = _spark(cfg)
    rows = recommend_for(spark, cfg, args.customer_key)
    if not rows:
        print(f"no recommendations for customer '{args.customer_key}'")
        return 1
    print(f"{'rank':>4}  {'sku':<14}{'score':>9}  reason            model")
    for row in rows:
        print(
            f"{row['rank']:>4}  {row['sku']:<14}{row['score']:>9.4f}  {row['reason']:<18}{row['model_version']}"
        )
    return 0


def cmd_maintain(cfg: Config, args: argparse.Namespace) -> int:
    from o2o import lake

    retention = (
        args.retention_hours if args.retention_hours is not None else cfg.maintenance.vacuum_retention_hours
    )
    if retention < 168 and not args.force:
        raise lake.RetentionTooShort(
            f"retention {retention}h is under 7 days; pass --force to VACUUM anyway (time travel ends there)"
        )
    spark = _spark(cfg)
    from o2o.report import table_versions

    for table in [row["table"] for row in table_versions(spark, cfg)]:
        zorder = tuple(cfg.maintenance.zorder.get(table, ()))
        metrics = lake.optimize(spark, cfg, table, zorder)
        lake.vacuum(spark, cfg, table, retention, force=args.force)
        print(
            f"{table:<34} optimized{' (z-order ' + ', '.join(zorder) + ')' if zorder else '':<28} "
            f"files +{metrics['numFilesAdded']} -{metrics['numFilesRemoved']}; vacuumed (retention {retention}h)"
        )
    stale = lake.remove_stale_checkpoints(spark, cfg, retention)
    print(f"checkpoint folders of killed runs older than {retention}h removed: {', '.join(stale) or 'none'}")
    return 0


COMMANDS = {
    "demo": cmd_demo,
    "generate": cmd_generate,
    "run": cmd_run,
    "dq": cmd_dq,
    "status": cmd_status,
    "history": cmd_history,
    "show": cmd_show,
    "recommend": cmd_recommend,
    "maintain": cmd_maintain,
}


def job_main(stage: str, argv: list[str] | None = None) -> int:
    """Entry of a spark-submit job file: `jobs/<stage>.py --env cluster --as-of 2026-06-30`."""
    parser = argparse.ArgumentParser(prog=f"o2o-job-{stage}")
    _common(parser)
    parser.add_argument("--as-of", type=_parse_date, required=True)
    parser.add_argument("--accept-dq-failure", action="append", default=[], metavar="EXPECTATION")
    args = parser.parse_args(argv)
    return main(
        ["run", stage, "--as-of", args.as_of.isoformat()]
        + (["--env", args.env] if args.env else [])
        + (["--conf-dir", args.conf_dir] if args.conf_dir else [])
        + [item for name in args.accept_dq_failure for item in ("--accept-dq-failure", name)]
    )


if __name__ == "__main__":
    sys.exit(main())
