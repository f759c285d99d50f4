"""Data-quality gates (Great Expectations 1.x): every GX call of the project lives in this package."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from o2o import lake, runs
from o2o.config import Config
from o2o.contracts import FEEDS
from o2o.frames import checkpointed, is_materialised, local_frame, union_all
from o2o.quality.checks import HINTS, Inputs, Plan, Planned, plan_suite
from o2o.quality.report import CheckResult, GateReport, QualityGateFailed, format_report
from o2o.quality.results import RESULTS_TABLE, append_results
from o2o.quality.suites import Suite, SuiteError, has_suite, load_suite

__all__ = [
    "RESULTS_TABLE",
    "CheckResult",
    "GateReport",
    "QualityGateFailed",
    "SuiteError",
    "batched_results",
    "data_docs_index",
    "format_report",
    "gate",
    "rebuild_data_docs",
    "run_suite_on_table",
]

log = logging.getLogger(__name__)
FEED_ROWS_SCHEMA = "feed string, rows long"
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def gate(
    spark: SparkSession,
    cfg: Config,
    table: str,
    df: DataFrame,
    *,
    run_id: str,
    stage: str,
    as_of: date | None = None,
    related: dict[str, DataFrame] | None = None,
    accept: tuple[str, ...] = (),
    feed_rows: dict[str, int] | None = None,
) -> GateReport:
    """Validate `df` (the rows about to be written to `table`) against conf/expectations/<table>.yaml.

    Runs the whole suite in one Great Expectations validation, appends every result to ops.dq_results and
    updates Data Docs. Raises QualityGateFailed when a critical expectation fails that is not in `accept`
    (names as `expectation(column)` or `table:expectation(column)`); failed warnings are logged and recorded.
    `related` holds other tables the suite refers to (e.g. {"silver.customers": df}); missing ones are read
    from the lake. `feed_rows` are the bronze rows per feed the run read, the denominator of a quarantine
    share (an increment's rejects over that increment); without it the bronze tables are counted whole.
    The gate computes its frame once for the validation (a checkpoint it releases
    afterwards) unless `df` is already cached or checkpointed and every derived column is row-local.
    Callers that write `df` afterwards should materialise `df` first (`cache`, `frames.checkpointed`, or a
    staged Parquet frame) so the stage computes it only once.
    """
    report = _validate(
        spark,
        cfg,
        table,
        df,
        run_id=run_id,
        stage=stage,
        as_of=as_of,
        related=related,
        accept=accept,
        feed_rows=feed_rows,
    )
    if not report.passed:
        raise QualityGateFailed(report)
    return report


def run_suite_on_table(
    spark: SparkSession,
    cfg: Config,
    table: str,
    *,
    as_of: date | None = None,
    run_id: str | None = None,
) -> GateReport:
    """Run a table's suite on the table as it is in the lake (the `o2o dq <table>` command); never raises on failures."""
    lake.require(spark, cfg, table)
    run_id = run_id or runs.new_run_id("dq")
    return _validate(
        spark,
        cfg,
        table,
        lake.read(spark, cfg, table),
        run_id=run_id,
        stage="dq",
        as_of=as_of,
        related=None,
        accept=(),
    )


def data_docs_index(cfg: Config) -> str:
    """Where the Data Docs index page is (lake reports folder / data_docs / index.html)."""
    return f"{lake.reports_dir(cfg).rstrip('/')}/data_docs/index.html"


def rebuild_data_docs(cfg: Config) -> str:
    """Rebuild the whole Data Docs site from every stored validation result; returns the index page path."""
    from o2o.quality import gx_adapter

    return gx_adapter.build_data_docs(_docs_root(cfg) or lake.reports_dir(cfg))


def _validate(
    spark: SparkSession,
    cfg: Config,
    table: str,
    df: DataFrame,
    *,
    run_id: str,
    stage: str,
    as_of: date | None,
    related: dict[str, DataFrame] | None,
    accept: tuple[str, ...],
    feed_rows: dict[str, int] | None = None,
) -> GateReport:
    started = time.monotonic()
    report = GateReport(
        table=table,
        stage=stage,
        run_id=run_id,
        as_of=as_of,
        table_version=_table_version(spark, cfg, table),
        checked_at=datetime.now(timezone.utc).replace(tzinfo=None),
    )
    if not has_suite(cfg, table):
        log.warning("quality gate: no suite for %s in %s; nothing checked", table, cfg.quality.suites_dir)
        report.skipped.append(f"no suite file for {table} in {cfg.quality.suites_dir}")
        return report
    from o2o.quality import gx_adapter  # GX is slow to import: only when a suite really runs

    suite = load_suite(cfg, table, gx_adapter.is_known_expectation)
    report.suite_path = suite.path
    plan = plan_suite(df, suite, _inputs(spark, cfg, suite, stage, table, as_of, related, feed_rows))
    report.skipped.extend(plan.skipped)
    with _materialised(df, plan) as frame:
        docs_root = _docs_root(cfg)
        specs = [
            gx_adapter.ExpectationSpec(
                check_id=item.check.name,
                expectation_type=item.expectation_type,
                kwargs=item.kwargs,
                severity=item.check.severity,
                description=item.description or None,
            )
            for item in plan.planned
        ]
        outcomes = {}
        if specs:
            found, identifier = gx_adapter.validate(
                frame, table, specs, run_id, docs_root, update_docs=_batch is None
            )
            outcomes = {o.check_id: o for o in found}
            if _batch is not None and docs_root:
                _batch.docs.setdefault(docs_root, []).append(identifier)
        report.data_docs = gx_adapter.data_docs_index(docs_root) if docs_root else None
        report.results = [
            _result(cfg, table, suite, plan, item, outcomes[item.check.name], frame, accept)
            for item in plan.planned
        ]
    report.duration_s = time.monotonic() - started
    if _batch is not None:
        _batch.reports.append(report)
    else:
        append_results(spark, cfg, [report])
    _log(report)
    return report


@contextmanager
def _materialised(df: DataFrame, plan: Plan) -> Iterator[DataFrame]:
    """The frame GX queries: computed once for all its metric queries and the example rows.

    A frame the caller already holds in memory (bronze's cached parse, gold's checkpointed rows) is used as
    it is when every derived column is an expression on its own row: each query then scans memory and
    recomputes a few expressions, cheaper than a second copy. Otherwise the derived columns (joins to other
    tables, windows) are computed in one pass and checkpointed: dozens of small queries, each on a one-node
    plan instead of the table's whole lineage.
    """
    if plan.row_local and is_materialised(df):
        yield plan.frame
        return
    with checkpointed(plan.frame) as frame:
        yield frame


@dataclass
class _Batch:
    reports: list[GateReport] = field(default_factory=list)
    docs: dict[str, list] = field(default_factory=dict)
    previous_runs: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_batch: _Batch | None = None


@contextmanager
def batched_results(spark: SparkSession, cfg: Config) -> Iterator[None]:
    """Gates inside the block keep their results; one ops.dq_results append and one Data Docs build at the end.

    A stage runs several gates: each Delta append and Data Docs render has a fixed cost of about a second,
    so the pipeline writes them once per stage. They are written when the block ends, also when a gate
    failed (the failure is what an operator reads first), so no result is lost.
    """
    global _batch
    if _batch is not None:  # nested: the outer block writes
        yield
        return
    _batch = batch = _Batch()
    try:
        yield
    finally:
        _batch = None
        append_results(spark, cfg, batch.reports)
        if batch.docs:
            from o2o.quality import gx_adapter

            for docs_root, identifiers in batch.docs.items():
                gx_adapter.update_data_docs(docs_root, identifiers)


def _inputs(
    spark: SparkSession,
    cfg: Config,
    suite: Suite,
    stage: str,
    table: str,
    as_of: date | None,
    related: dict[str, DataFrame] | None,
    feed_rows: dict[str, int] | None,
) -> Inputs:
    """Read what the suite refers to (other tables, the previous run's volume, bronze counts per feed)."""
    related = dict(related or {})
    wanted: set[str] = set()
    for check in suite.checks:
        if check.expect == "references":
            wanted.add(check.params["table"])
        if check.expect == "not_previously_purchased":
            wanted.update(("silver.order_lines", "silver.orders"))
    for name in wanted - set(related):
        if lake.exists(spark, cfg, name):
            related[name] = lake.read(spark, cfg, name)
    previous = None
    if any(c.expect == "volume_within_band_of_previous_run" for c in suite.checks):
        previous = _previous_rows(spark, cfg, stage, table)
    bronze_rows = None
    if any(c.expect == "quarantine_share_below" for c in suite.checks):
        bronze_rows = (
            local_frame(spark, sorted(feed_rows.items()), FEED_ROWS_SCHEMA)
            if feed_rows is not None
            else _bronze_table_rows(spark, cfg)
        )
    return Inputs(as_of=as_of, previous_rows=previous, related=related, feed_rows=bronze_rows)


def _previous_rows(spark: SparkSession, cfg: Config, stage: str, table: str) -> int | None:
    """Rows the previous successful run of the stage wrote to `table`.

    details.rows_out_by_table[table] when the stage records rows per table (bronze and silver: one
    increment against the one before), else rows_out (stages that write one table).
    """
    # One read of ops.pipeline_runs per stage: a batch (bronze gates seven feeds) keeps the row it read.
    # Bronze's feed threads gate at the same moment: the first reads, the others wait for its row.
    if _batch is not None:
        with _batch.lock:
            if stage not in _batch.previous_runs:
                _batch.previous_runs[stage] = runs.last_successful_run(spark, cfg, stage)
            row = _batch.previous_runs[stage]
    else:
        row = runs.last_successful_run(spark, cfg, stage)
    if row is None:
        return None
    try:
        by_table = json.loads(row["details"] or "{}").get("rows_out_by_table") or {}
    except (ValueError, AttributeError):
        by_table = {}
    if by_table:
        # A stage that records rows per table: one the previous run wrote nothing to has no baseline.
        return int(by_table[table]) if table in by_table else None
    return None if row["rows_out"] is None else int(row["rows_out"])


def _bronze_table_rows(spark: SparkSession, cfg: Config) -> DataFrame | None:
    """(feed, rows): every row of each bronze table (the denominator when a gate is given no feed_rows)."""
    counts = []
    for feed in FEEDS:
        name = f"bronze.{feed}"
        if lake.exists(spark, cfg, name):
            source = lake.read(spark, cfg, name)
            counts.append(
                source.groupBy().count().select(F.lit(feed).alias("feed"), F.col("count").alias("rows"))
            )
    if not counts:
        return None
    return union_all(counts)


def _result(
    cfg: Config,
    table: str,
    suite: Suite,
    plan: Plan,
    item: Planned,
    outcome,
    frame: DataFrame,
    accept: tuple[str, ...],
) -> CheckResult:
    check = item.check
    accepted = not outcome.success and (check.name in accept or f"{table}:{check.name}" in accept)
    examples: tuple[dict, ...] = ()
    if not outcome.success and item.failing_rows is not None and outcome.error is None:
        examples = _examples(cfg, suite, plan, item, frame)
    return CheckResult(
        name=check.name,
        expectation_type=f"expect_{item.expectation_type}",
        column=check.column
        or ",".join(check.params.get("column_list") or check.params.get("key") or [])
        or None,
        severity=check.severity,
        success=outcome.success,
        observed_value=outcome.observed_value,
        threshold=item.threshold,
        element_count=outcome.element_count,
        unexpected_count=outcome.unexpected_count,
        unexpected_percent=outcome.unexpected_percent,
        accepted=accepted,
        error=outcome.error,
        hint=check.hint or HINTS.get(check.expect, ""),
        examples=examples,
    )


def _examples(cfg: Config, suite: Suite, plan: Plan, item: Planned, frame: DataFrame) -> tuple[dict, ...]:
    rows = item.failing_rows(frame)
    derived = [
        c for c in rows.columns if c.startswith("_dq_") and (c in item.kwargs.values() or c == "_dq_copies")
    ]
    wanted = list(suite.example_columns) or [
        c for c in rows.columns if not c.startswith("_dq_") and c != "_raw"
    ]
    for column in (item.check.column, *(item.check.params.get("column_list") or [])):
        if column and column not in wanted:
            wanted.append(column)
    shown = [c for c in dict.fromkeys([*wanted, *derived]) if c in rows.columns]
    # A handful of rows (cfg.quality.example_rows) for the message; bounded by limit().
    return tuple(row.asDict() for row in rows.select(*shown).limit(cfg.quality.example_rows).collect())


def _table_version(spark: SparkSession, cfg: Config, table: str) -> int | None:
    try:
        return lake.version(spark, cfg, table)
    except lake.BadTableName:  # not a '<layer>.<table>' name of the lake
        return None


def _docs_root(cfg: Config) -> str | None:
    """The reports folder when Data Docs are on and it is a local path (GX's file stores need one)."""
    if not cfg.quality.data_docs:
        return None
    root = lake.reports_dir(cfg)
    if _URI.match(root) and not root.startswith("file://"):
        log.warning("Data Docs need a local reports folder; %s is remote, so Data Docs are not written", root)
        return None
    return root.removeprefix("file://")


def _log(report: GateReport) -> None:
    for result in report.warnings:
        log.warning(
            "DQ warning %s %s: observed %s; threshold %s",
            report.table,
            result.name,
            result.observed,
            result.threshold,
        )
    for result in report.accepted:
        log.warning(
            "DQ critical failure ACCEPTED by operator for run %s: %s %s (observed %s)",
            report.run_id,
            report.table,
            result.name,
            result.observed,
        )
    log.info("%s", format_report(report))
