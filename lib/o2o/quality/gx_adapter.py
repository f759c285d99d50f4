"""The only module that imports Great Expectations (1.x): build a suite, validate a Spark DataFrame, Data Docs."""

from __future__ import annotations

import html
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

# GX sends usage analytics unless told otherwise; a batch job must not phone home.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.expectations.metadata_types import FailureSeverity  # noqa: E402
from pyspark.sql import DataFrame  # noqa: E402

DATASOURCE = "o2o_spark"
DOCS_SITE = "o2o_data_docs"
CHECK_ID = "o2o_check"
# Counts and observed values only: partial unexpected lists cost one extra Spark job per expectation
# (GX on Spark cannot point at failing rows anyway); o2o builds its own example rows on failure. Nor the
# "unexpected index query" (the failing condition rendered as code): GX builds it for every row-wise
# expectation by having Spark analyse the condition, and for uniqueness Spark refuses the window inside a
# filter, an exception GX swallows at a cost of about 0.1 s per gate.
RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "return_unexpected_index_query": False,
}
SEVERITY = {"critical": FailureSeverity.CRITICAL, "warn": FailureSeverity.WARNING}

for _noisy in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)

SUMMARY_START = "<!-- o2o-summary -->"
SUMMARY_END = "<!-- /o2o-summary -->"

_contexts: dict[str, Any] = {}
# GX data contexts are not thread-safe; stages may gate from several threads (bronze ingests feeds at once).
_lock = threading.RLock()


@dataclass(frozen=True)
class ExpectationSpec:
    """One GX expectation to run: our check id, the GX name without 'expect_', its arguments."""

    check_id: str
    expectation_type: str
    kwargs: dict[str, Any]
    severity: str
    description: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What GX reported for one expectation."""

    check_id: str
    success: bool
    observed_value: Any
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    error: str | None


def expectation_class(expectation_type: str) -> type | None:
    """The gx.expectations class for 'column_values_to_be_unique' (ExpectColumnValuesToBeUnique), or None."""
    class_name = "Expect" + "".join(part.capitalize() for part in expectation_type.split("_"))
    return getattr(gx.expectations, class_name, None)


def is_known_expectation(expectation_type: str) -> bool:
    """True when GX 1.x has an expectation of that name."""
    return expectation_class(expectation_type) is not None


def validate(
    df: DataFrame,
    suite_name: str,
    specs: list[ExpectationSpec],
    run_name: str,
    docs_root: str | None,
    update_docs: bool = True,
) -> tuple[list[Outcome], Any]:
    """Run all `specs` in one GX validation of `df`; returns the outcomes and the stored result's identifier.

    With `docs_root` the result is kept in the file context there; `update_docs` renders its Data Docs
    page at once (else `update_data_docs` renders a stage's pages together, once).
    """
    with _lock:
        return _validate(df, suite_name, specs, run_name, docs_root, update_docs)


def _validate(
    df: DataFrame,
    suite_name: str,
    specs: list[ExpectationSpec],
    run_name: str,
    docs_root: str | None,
    update_docs: bool,
) -> tuple[list[Outcome], Any]:
    context = _context(docs_root)
    suite = gx.ExpectationSuite(name=suite_name)
    for spec in specs:
        suite.add_expectation(
            expectation_class(spec.expectation_type)(
                **spec.kwargs,
                severity=SEVERITY[spec.severity],
                description=spec.description,
                meta={CHECK_ID: spec.check_id, "severity": spec.severity},
            )
        )
    suite = context.suites.add_or_update(suite)
    batch_definition = _batch_definition(context, suite_name)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
    )
    actions = (
        [gx.checkpoint.UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE])]
        if docs_root and update_docs
        else []
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite_name, validation_definitions=[definition], actions=actions, result_format=RESULT_FORMAT
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": df}, run_id=RunIdentifier(run_name=run_name))
    ((identifier, validation),) = result.run_results.items()
    if docs_root and update_docs:
        write_summary(context, docs_root)
    return [_outcome(item) for item in validation.results], identifier


def update_data_docs(docs_root: str, identifiers: list[Any]) -> str:
    """Render the Data Docs pages of the given stored results and the index, once; returns the index path."""
    with _lock:
        context = _context(docs_root)
        context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=identifiers, build_index=True)
        write_summary(context, docs_root)
    return data_docs_index(docs_root)


def data_docs_index(docs_root: str) -> str:
    """Path of the Data Docs index page under the reports folder."""
    return str(Path(docs_root) / "data_docs" / "index.html")


def build_data_docs(docs_root: str) -> str:
    """Rebuild the whole Data Docs site from every stored validation result; returns the index path."""
    with _lock:
        context = _context(docs_root)
        context.build_data_docs(site_names=[DOCS_SITE])
        write_summary(context, docs_root)
    return data_docs_index(docs_root)


def write_summary(context, docs_root: str) -> None:
    """Put a static table of each suite's latest result (status, failed expectations, link) on the index page.

    GX fills its own index table with JavaScript from public CDNs; this part reads without network or script.
    """
    index = Path(data_docs_index(docs_root))
    if not index.exists():
        return
    store = context.validation_results_store
    latest: dict[str, Any] = {}
    for key in store.list_keys():
        suite = key.expectation_suite_identifier.name
        if suite not in latest or key.run_id.run_time > latest[suite].run_id.run_time:
            latest[suite] = key
    rows = []
    for suite, key in sorted(latest.items()):
        validation = store.get(key)
        failed = [
            f"{html.escape(str(item.expectation_config.meta.get(CHECK_ID, item.expectation_config.type)))}"
            f" [{html.escape(str(item.expectation_config.meta.get('severity', '')))}]"
            for item in validation.results
            if not item.success
        ]
        link = "validations/" + "/".join(quote(part) for part in key.to_tuple()) + ".html"
        rows.append(
            f'<tr><td><a href="{link}">{html.escape(suite)}</a></td>'
            f"<td>{html.escape(key.run_id.run_name or '')}</td><td>{key.run_id.run_time:%Y-%m-%d %H:%M:%S}Z</td>"
            f"<td>{'Succeeded' if validation.success else 'Failed'}</td>"
            f"<td>{'<br>'.join(failed) or '-'}</td></tr>"
        )
    block = (
        f'{SUMMARY_START}<section id="o2o-summary" style="margin:1em"><h2>o2o quality gates: latest result per suite</h2>'
        '<table border="1" cellpadding="4"><thead><tr><th>suite</th><th>run</th><th>checked at</th><th>status</th>'
        f"<th>failed expectations</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>{SUMMARY_END}"
    )
    page = index.read_text(encoding="utf-8")
    page = re.sub(re.escape(SUMMARY_START) + ".*?" + re.escape(SUMMARY_END), "", page, flags=re.S)
    page = re.sub(r"(<body[^>]*>)", lambda match: match.group(1) + block, page, count=1)
    index.write_text(page, encoding="utf-8")


def _context(docs_root: str | None):
    """A file context under <reports>/gx (results kept across runs) when Data Docs are on, else an in-memory one."""
    key = docs_root or ""
    if key in _contexts:
        return _contexts[key]
    if docs_root:
        context = gx.get_context(mode="file", project_root_dir=docs_root)
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(Path(docs_root) / "data_docs"),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        sites = context.get_config().data_docs_sites or {}
        if DOCS_SITE not in sites:
            context.add_data_docs_site(site_name=DOCS_SITE, site_config=site)
        for other in [name for name in sites if name != DOCS_SITE]:
            context.delete_data_docs_site(other)
    else:
        context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    if docs_root:
        context.variables.save()
    _contexts[key] = context
    return context


def _batch_definition(context, asset_name: str):
    # persist=False: GX would otherwise persist() every batch and never release it; the gate owns caching.
    try:
        datasource = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_spark(name=DATASOURCE, persist=False)
    try:
        asset = datasource.get_asset(asset_name)
    except LookupError:
        asset = datasource.add_dataframe_asset(name=asset_name)
    try:
        return asset.get_batch_definition("whole_dataframe")
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe("whole_dataframe")


def _outcome(item) -> Outcome:
    result = item.result or {}
    info = item.exception_info or {}
    if "raised_exception" not in info and info:  # several metrics may fail: {metric_id: info}
        info = next(iter(info.values()))
    error = info.get("exception_message") if info.get("raised_exception") else None
    return Outcome(
        check_id=item.expectation_config.meta[CHECK_ID],
        success=bool(item.success) and error is None,
        observed_value=result.get("observed_value"),
        element_count=result.get("element_count"),
        unexpected_count=result.get("unexpected_count"),
        unexpected_percent=result.get("unexpected_percent"),
        error=error,
    )
