"""What a gate found: per-expectation results, the gate report, the failure a person reads, a text table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one expectation of a suite on one table."""

    name: str
    expectation_type: str
    column: str | None
    severity: str
    success: bool
    observed_value: Any = None
    threshold: str = ""
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    accepted: bool = False
    error: str | None = None
    hint: str = ""
    examples: tuple[dict, ...] = ()

    @property
    def observed(self) -> str:
        """The observed value in words: a count of bad rows, or the measured value."""
        if self.error:
            return f"error: {self.error}"
        if self.unexpected_count is not None:
            percent = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            of = f" of {self.element_count}" if self.element_count is not None else ""
            return f"{self.unexpected_count}{of} rows unexpected{percent}"
        return "" if self.observed_value is None else str(self.observed_value)


@dataclass
class GateReport:
    """Every result of one table's suite in one run, and what was skipped (missing inputs, switched off)."""

    table: str
    stage: str
    run_id: str
    as_of: date | None
    table_version: int | None
    checked_at: datetime
    results: list[CheckResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    suite_path: str | None = None
    duration_s: float = 0.0
    data_docs: str | None = None

    @property
    def critical_failures(self) -> list[CheckResult]:
        """Failed critical expectations that no operator accepted: these stop promotion."""
        return [r for r in self.results if not r.success and r.severity == "critical" and not r.accepted]

    @property
    def accepted(self) -> list[CheckResult]:
        """Failed critical expectations an operator accepted for this run."""
        return [r for r in self.results if not r.success and r.accepted]

    @property
    def warnings(self) -> list[CheckResult]:
        """Failed warn expectations (recorded, the run goes on)."""
        return [r for r in self.results if not r.success and r.severity == "warn"]

    @property
    def passed(self) -> bool:
        """True when nothing blocks promotion."""
        return not self.critical_failures


class QualityGateFailed(RuntimeError):
    """A critical expectation failed: the message names table, column, expectation, observed value, examples, what to do."""

    def __init__(self, report: GateReport):
        self.report = report
        super().__init__(failure_message(report))


def failure_message(report: GateReport) -> str:
    """A readable explanation of every blocking failure, with example rows and how to proceed."""
    failures = report.critical_failures
    lines = [
        f"Quality gate failed for {report.table} (stage {report.stage}, run {report.run_id}): "
        f"{len(failures)} critical expectation(s) failed; nothing was promoted.",
    ]
    for result in failures:
        lines.extend(_describe(report.table, result))
    if report.warnings:
        lines.append(f"Also {len(report.warnings)} warning(s): " + ", ".join(r.name for r in report.warnings))
    names = " ".join(f"--accept-dq-failure '{report.table}:{r.name}'" for r in failures)
    lines.append(
        f"Results are in ops.dq_results (run_id = '{report.run_id}')"
        + (f" and Data Docs {report.data_docs}" if report.data_docs else "")
        + f". Fix the data and rerun, or, to promote this run anyway, rerun with {names}."
    )
    return "\n".join(lines)


def _describe(table: str, result: CheckResult) -> list[str]:
    lines = [
        f"- {table}.{result.column or '*'}: {result.name} [{result.severity}] ({result.expectation_type})",
        f"    observed: {result.observed}",
        f"    threshold: {result.threshold}",
    ]
    if result.examples:
        lines.append(f"    example rows ({len(result.examples)}):")
        lines.extend(f"      {_row_text(row)}" for row in result.examples)
    if result.hint:
        lines.append(f"    look at: {result.hint}")
    return lines


def _row_text(row: dict) -> str:
    return ", ".join(f"{key}={_short(value)}" for key, value in row.items())


def _short(value: Any, width: int = 60) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def format_report(report: GateReport) -> str:
    """A plain-text table of every result: status, severity, expectation, column, observed, threshold."""
    header = ("status", "severity", "expectation", "column", "observed", "threshold")
    rows = [
        (
            "PASS" if r.success else ("ACCEPTED" if r.accepted else "FAIL"),
            r.severity,
            r.name,
            r.column or "",
            _short(r.observed, 50),
            _short(r.threshold, 60),
        )
        for r in report.results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    version = "new table" if report.table_version is None else f"version {report.table_version}"
    verdict = "PASSED" if report.passed else "FAILED"
    lines = [
        f"{report.table} ({version}) stage {report.stage} run {report.run_id}"
        + (f" as of {report.as_of}" if report.as_of else "")
        + f": {verdict}, {len(report.critical_failures)} critical, {len(report.warnings)} warning(s), "
        f"{len(report.accepted)} accepted, {report.duration_s:.1f}s",
        fmt.format(*header),
        fmt.format(*("-" * w for w in widths)),
        *(fmt.format(*row) for row in rows),
    ]
    lines.extend(f"skipped: {note}" for note in report.skipped)
    if report.data_docs:
        lines.append(f"Data Docs: {report.data_docs}")
    return "\n".join(lines)
