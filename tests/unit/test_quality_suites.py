"""Suites as data: every shipped suite loads, config references resolve, mistakes are named; report texts."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from o2o.quality import gx_adapter
from o2o.quality.report import CheckResult, GateReport, QualityGateFailed, format_report
from o2o.quality.suites import SuiteError, load_suite

SUITES = sorted(
    p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "expectations").glob("*.yaml")
)


def test_the_required_suites_exist():
    required = {
        "silver.customers",
        "silver.customer_identity",
        "silver.products",
        "silver.orders",
        "silver.order_lines",
        "silver.interactions",
        "silver.quarantine",
        "gold.customer_rfm",
        "gold.channel_kpis",
        "gold.recommendations",
    } | {
        f"bronze.{feed}"
        for feed in (
            "online_orders",
            "app_clickstream",
            "mini_program_clickstream",
            "pos_sales",
            "crm_members",
            "product_catalogue",
            "reviews",
        )
    }
    assert required <= set(SUITES)


@pytest.mark.parametrize("table", SUITES)
def test_every_suite_loads_with_known_expectations(base_cfg, table):
    suite = load_suite(base_cfg, table, gx_adapter.is_known_expectation)
    assert suite.checks
    assert {c.severity for c in suite.checks} <= {"critical", "warn"}


@pytest.mark.parametrize("table", [t for t in SUITES if t.startswith("bronze.")])
def test_bronze_freshness_reads_the_delivery_folder_of_each_file(spark, base_cfg, table):
    fresh = [c for c in load_suite(base_cfg, table).checks if c.expect == "fresh"]
    if table == "bronze.product_catalogue":
        assert fresh == []  # a catalogue is re-sent when it changes, not daily
        return
    (check,) = fresh
    paths = spark.createDataFrame(
        [
            ("file:/data/landing/app_clickstream/2026-08-27/part-00001.jsonl",),
            ("s3a://bucket/landing/pos_sales/2026-08-29/S001_2026-08-29.csv",),
            ("file:/data/landing/pos_sales/late/S001.csv",),  # not in a date folder: no delivery date
        ],
        "_source_file string",
    )
    days = [row[0] for row in paths.select(F.expr(check.params["expr"])).collect()]
    assert days == [date(2026, 8, 27), date(2026, 8, 29), None]


def test_config_references_are_resolved(base_cfg):
    cfg = base_cfg.replace(reco={"top_n": 7})
    suite = load_suite(cfg, "gold.recommendations", gx_adapter.is_known_expectation)
    by_name = {c.name: c for c in suite.checks}
    assert by_name["exactly_k_per_customer"].params["k"] == 7
    assert by_name["column_values_to_be_between(rank)"].params["max_value"] == 7


def test_a_rule_switched_off_by_config_is_listed_as_disabled(base_cfg):
    on = load_suite(base_cfg.replace(reco={"exclude_purchased": True}), "gold.recommendations")
    off = load_suite(base_cfg.replace(reco={"exclude_purchased": False}), "gold.recommendations")
    assert "not_previously_purchased(sku)" in {c.name for c in on.checks}
    assert "not_previously_purchased(sku)" not in {c.name for c in off.checks}
    assert off.disabled == ("not_previously_purchased(sku)",)


def _write_suite(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "expectations"
    folder.mkdir()
    (folder / "silver.orders.yaml").write_text(body, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{expect: column_values_to_be_nice, column: a, severity: critical}",
            "unknown expectation 'column_values_to_be_nice'",
        ),
        (
            "{expect: column_values_to_not_be_null, column: a, severity: fatal}",
            "severity must be one of critical, warn",
        ),
        ("{expect: references, column: a, severity: warn}", "missing table, key"),
        (
            "{expect: column_values_to_not_be_null, column: a, row_condition: 'b > 1', condition_parser: pandas, "
            "severity: warn}",
            "row_condition must be a Spark SQL predicate string with condition_parser spark",
        ),
        (
            "{expect: fresh, column: a, max_age_days: '${quality.nope}', severity: warn}",
            "${quality.nope} names no config value",
        ),
    ],
)
def test_suite_mistakes_name_the_file_and_the_fix(base_cfg, tmp_path, entry, message):
    folder = _write_suite(tmp_path, f"table: silver.orders\nexpectations:\n  - {entry}\n")
    cfg = base_cfg.replace(quality={"suites_dir": str(folder)})
    with pytest.raises(SuiteError) as caught:
        load_suite(cfg, "silver.orders", gx_adapter.is_known_expectation)
    assert message in str(caught.value)
    assert "silver.orders.yaml: expectation #1" in str(caught.value)


def _report() -> GateReport:
    return GateReport(
        table="silver.orders",
        stage="silver",
        run_id="run-7",
        as_of=date(2026, 9, 1),
        table_version=3,
        checked_at=datetime(2026, 9, 1, 6, 0),
        results=[
            CheckResult(
                name="column_values_to_be_unique(order_id)",
                expectation_type="expect_column_values_to_be_unique",
                column="order_id",
                severity="critical",
                success=False,
                threshold="every value unique",
                element_count=10,
                unexpected_count=2,
                unexpected_percent=20.0,
                hint="duplicate keys",
                examples=({"order_id": "o1", "_dq_copies": 2},),
            ),
            CheckResult(
                name="fresh(order_ts)",
                expectation_type="expect_column_min_to_be_between",
                column="order_ts",
                severity="warn",
                success=False,
                observed_value=9,
                threshold="newest order_ts at most 3 days before as-of 2026-09-01",
            ),
            CheckResult(
                name="column_values_to_not_be_null(order_id)",
                expectation_type="expect_column_values_to_not_be_null",
                column="order_id",
                severity="critical",
                success=True,
                element_count=10,
                unexpected_count=0,
                unexpected_percent=0.0,
            ),
        ],
    )


def test_failure_message_names_table_column_expectation_observed_examples_and_fix():
    message = str(QualityGateFailed(_report()))
    assert "silver.orders.order_id: column_values_to_be_unique(order_id) [critical]" in message
    assert "observed: 2 of 10 rows unexpected (20.00%)" in message
    assert "threshold: every value unique" in message
    assert "order_id=o1, _dq_copies=2" in message
    assert "look at: duplicate keys" in message
    assert "--accept-dq-failure 'silver.orders:column_values_to_be_unique(order_id)'" in message
    assert "1 warning(s): fresh(order_ts)" in message
    assert "column_values_to_not_be_null(order_id)" not in message.split("Also")[0]


def test_format_report_is_a_table_with_one_line_per_result():
    lines = format_report(_report()).splitlines()
    assert lines[0].startswith(
        "silver.orders (version 3) stage silver run run-7 as of 2026-09-01: FAILED, 1 critical, 1 warning(s)"
    )
    assert lines[1].split() == ["status", "severity", "expectation", "column", "observed", "threshold"]
    body = lines[3:6]
    assert [line.split()[0] for line in body] == ["FAIL", "FAIL", "PASS"]
    assert "9" in body[1] and "fresh(order_ts)" in body[1]


def test_accepted_failures_do_not_block():
    report = _report()
    first = report.results[0]
    report.results[0] = CheckResult(**{**first.__dict__, "accepted": True})
    assert report.passed
    assert [r.name for r in report.accepted] == ["column_values_to_be_unique(order_id)"]
    assert format_report(report).splitlines()[3].startswith("ACCEPTED")
