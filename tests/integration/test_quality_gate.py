"""The quality gate on a temp lake: bad data stops with a readable message, warnings pass, results and Data Docs kept."""

from __future__ import annotations

import html
import json
import re
import subprocess
from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from pyspark.errors.exceptions import captured

from browser import require_chromium
from o2o import lake
from o2o.contracts import OPS
from o2o.quality import QualityGateFailed, format_report, gate, run_suite_on_table
from o2o.runs import RUNS_TABLE

AS_OF = date(2026, 9, 1)
ORDERS_SCHEMA = (
    "order_id string, channel string, store_id string, customer_key string, order_ts timestamp, "
    "status string, fulfilment string, currency string, shipping_fee decimal(12,2)"
)


def _fake_previous_run(spark, cfg, stage: str, rows_out: int, details: dict | None = None) -> None:
    row = ("prev", stage, date(2026, 8, 31), "local", "succeeded", datetime(2026, 8, 31), datetime(2026, 8, 31, 0, 1),
           60.0, "{}", "{}", rows_out, rows_out, 0, json.dumps(details or {}), None)  # fmt: skip
    lake.ensure_table(spark, cfg, RUNS_TABLE, OPS["pipeline_runs"])
    lake.append(spark.createDataFrame([row], OPS["pipeline_runs"]), cfg, RUNS_TABLE)


def _results(spark, cfg, run_id: str) -> dict[str, tuple]:
    rows = lake.read(spark, cfg, "ops.dq_results").where(f"run_id = '{run_id}'").collect()
    return {
        r["expectation"]: (r["severity"], r["success"], r["accepted_by_operator"], r["unexpected_count"])
        for r in rows
    }


@pytest.fixture(scope="module")
def failed_orders(spark, base_cfg, tmp_path_factory):
    """silver.orders with a duplicate key, an unknown fulfilment, an orphan customer, stale data, a volume drop,
    and no currency on an app order (and on a POS order, where the suite allows it)."""
    root = tmp_path_factory.mktemp("quality")
    cfg = base_cfg.replace(
        lake={"root": str(root / "lake"), "landing": str(root / "landing"), "reports": "", "checkpoints": ""},
        quality={"data_docs": True},
    )
    _fake_previous_run(spark, cfg, "silver", rows_out=100)
    orders = spark.createDataFrame(
        [
            ("o1", "web", None, "c1", datetime(2026, 8, 20, 10), "paid", "delivery", "CNY", D("5")),
            ("o1", "web", None, "c1", datetime(2026, 8, 20, 11), "paid", "delivery", "CNY", D("5")),
            ("o2", "pos", "S001", None, datetime(2026, 8, 19, 9), "completed", "in_store", None, D("0")),
            ("o3", "app", None, "c9", datetime(2026, 8, 18, 8), "paid", "drone", None, D("0")),
        ],
        ORDERS_SCHEMA,
    )
    customers = spark.createDataFrame([("c1",)], "customer_key string")
    with pytest.raises(QualityGateFailed) as caught:
        gate(
            spark,
            cfg,
            "silver.orders",
            orders,
            run_id="run-bad",
            stage="silver",
            as_of=AS_OF,
            related={"silver.customers": customers},
        )
    return cfg, caught.value


def test_bad_orders_fail_the_right_critical_expectations(failed_orders):
    _cfg, error = failed_orders
    report = error.report
    assert sorted(r.name for r in report.critical_failures) == [
        "column_values_to_be_in_set(fulfilment)",
        "column_values_to_be_unique(order_id)",
    ]
    assert sorted(r.name for r in report.warnings) == [
        "column_values_to_not_be_null(currency)",
        "fresh(order_ts)",
        "references(customer_key)",
        "volume_within_band_of_previous_run",
    ]
    by_name = {r.name: r for r in report.results}
    assert by_name["column_values_to_be_unique(order_id)"].unexpected_count == 2
    assert by_name["fresh(order_ts)"].observed_value == 12  # newest order 2026-08-20, as of 2026-09-01
    assert by_name["volume_within_band_of_previous_run"].observed_value == 4
    # Only o3 counts: the suite checks currency where channel <> 'pos'.
    assert by_name["column_values_to_not_be_null(currency)"].unexpected_count == 1
    assert (
        by_name["references(customer_key)"].unexpected_count == 1
    )  # c9; the anonymous order is not an orphan


def test_the_message_names_table_column_expectation_observed_threshold_examples_and_fix(failed_orders):
    message = str(failed_orders[1])
    assert "Quality gate failed for silver.orders (stage silver, run run-bad)" in message
    assert "silver.orders.order_id: column_values_to_be_unique(order_id) [critical]" in message
    assert "observed: 2 of 4 rows unexpected (50.00%)" in message
    assert "threshold: values in {delivery, pick_up_in_store, in_store}" in message
    assert re.search(r"order_id=o3, .*fulfilment=drone", message)
    assert re.search(r"order_id=o1, .*_dq_copies=2", message)
    assert "look at: duplicate keys" in message
    assert "--accept-dq-failure 'silver.orders:column_values_to_be_in_set(fulfilment)'" in message


def test_every_result_lands_in_ops_dq_results(spark, failed_orders):
    cfg, error = failed_orders
    results = _results(spark, cfg, "run-bad")
    assert len(results) == len(error.report.results) == 11
    assert results["column_values_to_be_unique(order_id)"] == ("critical", False, False, 2)
    assert results["references(customer_key)"] == ("warn", False, False, 1)
    assert results["column_values_to_not_be_null(currency)"] == ("warn", False, False, 1)
    assert results["column_values_to_not_be_null(order_id)"] == ("critical", True, False, 0)


def test_a_failing_uniqueness_check_costs_gx_no_failed_spark_analysis(spark, monkeypatch):
    # By default GX also renders every row-wise condition as a query, by having Spark analyse it in a filter;
    # Spark refuses uniqueness's window there and GX swallows the exception (about 0.1 s per gate, unused).
    from o2o.quality import gx_adapter

    converted = []
    original = captured.convert_exception
    monkeypatch.setattr(captured, "convert_exception", lambda e: converted.append(e) or original(e))
    frame = spark.createDataFrame([("o1", 1), ("o1", 2), ("o2", 7)], "order_id string, quantity int")
    specs = [
        gx_adapter.ExpectationSpec(
            "unique", "column_values_to_be_unique", {"column": "order_id"}, "critical"
        ),
        gx_adapter.ExpectationSpec(
            "small", "column_values_to_be_between", {"column": "quantity", "max_value": 5}, "critical"
        ),
    ]
    outcomes, _ = gx_adapter.validate(frame, "gx_work_probe", specs, "run-probe", docs_root=None)
    assert {o.check_id: (o.success, o.unexpected_count) for o in outcomes} == {
        "unique": (False, 2),
        "small": (False, 1),
    }
    assert converted == []


def test_data_docs_index_lists_the_suite_and_the_failed_expectation(failed_orders):
    cfg, error = failed_orders
    index = Path(lake.reports_dir(cfg)) / "data_docs" / "index.html"
    assert index.exists() and error.report.data_docs == str(index)
    chromium = require_chromium()
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", index.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", " ", dom, flags=re.S)))
    summary = text[text.index("latest result per suite") :]
    assert re.search(r"silver\.orders\s+run-bad\s+\S+ \S+\s+Failed", summary)
    assert "column_values_to_be_unique(order_id) [critical]" in summary
    assert "fresh(order_ts) [warn]" in summary
    page = re.search(r'href="(validations/[^"]+)"', dom).group(1)
    page_dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            (index.parent / page).as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    assert "values must be unique" in html.unescape(re.sub(r"<[^>]+>", " ", page_dom))


def test_accept_lets_a_critical_failure_through_and_warnings_do_not_raise(spark, cfg):
    cfg = cfg.replace(quality={"data_docs": False})
    lines = spark.createDataFrame(
        [
            ("o1", 1, "a", 2, D("10"), D("20")),
            ("o1", 2, "b", 1, D("5"), D("6")),
            ("o9", 1, "a", 1, D("10"), D("10")),
        ],
        "order_id string, line_no int, sku string, quantity int, unit_price decimal(12,2), amount decimal(12,2)",
    )
    orders = spark.createDataFrame([("o1",)], "order_id string")
    products = spark.createDataFrame([("a",), ("b",)], "sku string")

    report = gate(spark, cfg, "silver.order_lines", lines, run_id="run-accept", stage="silver", as_of=AS_OF,
                  related={"silver.orders": orders, "silver.products": products},
                  accept=("references(order_id)",))  # fmt: skip

    assert report.passed
    assert [r.name for r in report.accepted] == ["references(order_id)"]
    assert [r.name for r in report.warnings] == ["amount_is_quantity_times_price"]  # o1/2: 1 x 5 != 6
    results = _results(spark, cfg, "run-accept")
    assert results["references(order_id)"] == ("critical", False, True, 1)
    assert results["amount_is_quantity_times_price"] == ("warn", False, False, 1)


def test_bad_recommendations_fail_k_per_customer_nan_and_purchased(spark, cfg):
    cfg = cfg.replace(quality={"data_docs": False}, reco={"top_n": 2, "exclude_purchased": True})
    recos = spark.createDataFrame(
        [("m1", "c1", 1, "a", 0.9), ("m1", "c1", 2, "b", 0.8), ("m1", "c2", 1, "a", float("nan"))],
        "model_version string, customer_key string, rank int, sku string, score double",
    )
    related = {
        "silver.products": spark.createDataFrame([("a",), ("b",)], "sku string"),
        "silver.orders": spark.createDataFrame([("o1", "c1")], "order_id string, customer_key string"),
        "silver.order_lines": spark.createDataFrame(
            [("o1", "b", 1)], "order_id string, sku string, quantity int"
        ),
    }
    with pytest.raises(QualityGateFailed) as caught:
        gate(spark, cfg, "gold.recommendations", recos, run_id="run-reco", stage="reco", related=related)
    assert sorted(r.name for r in caught.value.report.critical_failures) == [
        "exactly_k_per_customer",
        "not_nan(score)",
        "not_previously_purchased(sku)",
    ]
    assert "customer_key=c1, rank=2, sku=b" in str(caught.value)


def test_clean_snapshot_passes_and_dq_command_prints_a_table(spark, cfg):
    cfg = cfg.replace(quality={"data_docs": False})
    rfm = spark.createDataFrame(
        [
            (AS_OF, "c1", 3, 5, D("120.50"), 5, 4, 5, "Champions"),
            (AS_OF, "c2", 200, 1, D("10.00"), 1, 1, 1, "Lost"),
            (AS_OF, "c3", 40, 2, D("55.00"), 3, 2, 3, "Can't Lose Them"),
        ],
        "as_of date, customer_key string, recency_days int, frequency long, monetary decimal(14,2), "
        "r_score int, f_score int, m_score int, segment string",
    )
    customers = spark.createDataFrame([("c1",), ("c2",), ("c3",)], "customer_key string")
    lake.overwrite(customers, cfg, "silver.customers")
    lake.replace_snapshot(rfm, cfg, "gold.customer_rfm", as_of=AS_OF)

    report = run_suite_on_table(spark, cfg, "gold.customer_rfm", run_id="run-dq")

    assert report.passed and all(r.success for r in report.results)
    assert report.table_version == 0
    assert len(report.results) == 16
    text = format_report(report)
    assert text.startswith(
        "gold.customer_rfm (version 0) stage dq run run-dq: PASSED, 0 critical, 0 warning(s)"
    )
    assert "PASS    critical  one_row_per_customer_per_snapshot" in text


def test_quarantine_share_is_of_the_rows_the_run_read_when_given(spark, cfg):
    # 3 rejected reviews: 3 of the increment's 20 rows (15%) is over the 2% limit, although against a
    # bronze table of 1,000 rows it would be 0.3% and pass unseen.
    cfg = cfg.replace(quality={"data_docs": False})
    bronze_reviews = spark.range(1000).selectExpr("'x' AS raw")
    lake.overwrite(bronze_reviews, cfg, "bronze.reviews")
    rejected = spark.createDataFrame(
        [("reviews", f"r{i}", "rating_out_of_range", None, None, None) for i in range(3)],
        "feed string, record_id string, reason string, detail string, source_file string, raw_payload string",
    )

    whole_table = gate(spark, cfg, "silver.quarantine", rejected, run_id="run-q-all", stage="silver")
    increment = gate(spark, cfg, "silver.quarantine", rejected, run_id="run-q-inc", stage="silver",
                     feed_rows={"reviews": 20, "online_orders": 500})  # fmt: skip

    assert whole_table.passed and whole_table.warnings == []
    assert [r.name for r in increment.warnings] == ["quarantine_share_below(feed)"]
    assert "0.15" in format_report(increment)  # 3 / 20


def _three_order_lines(spark):
    lines = spark.createDataFrame(
        [("o1", 1, "a", 2, D("10"), D("20")), ("o1", 2, "b", 1, D("5"), D("5")), ("o2", 1, "a", 1, D("10"), D("10"))],
        "order_id string, line_no int, sku string, quantity int, unit_price decimal(12,2), amount decimal(12,2)",
    )  # fmt: skip
    related = {
        "silver.orders": spark.createDataFrame([("o1",), ("o2",)], "order_id string"),
        "silver.products": spark.createDataFrame([("a",), ("b",)], "sku string"),
    }
    return lines, related


def test_volume_compares_a_table_with_its_own_rows_in_the_previous_run(spark, cfg):
    # The previous silver run wrote 1,000 rows in all, 4 of them order lines: 3 lines today is within ±50%
    # of 4 (against the stage's total it would be a 99.7% drop, a warning every day).
    cfg = cfg.replace(quality={"data_docs": False})
    _fake_previous_run(
        spark, cfg, "silver", 1000, {"rows_out_by_table": {"silver.order_lines": 4, "silver.orders": 996}}
    )
    lines, related = _three_order_lines(spark)

    report = gate(spark, cfg, "silver.order_lines", lines, run_id="run-vol", stage="silver", related=related)

    volume = {r.name: r for r in report.results}["volume_within_band_of_previous_run"]
    assert volume.success and volume.observed_value == 3
    assert "row count between 2 and 6" in format_report(report)


def test_volume_has_no_baseline_for_a_table_the_previous_run_did_not_write(spark, cfg):
    cfg = cfg.replace(quality={"data_docs": False})
    _fake_previous_run(spark, cfg, "silver", 1000, {"rows_out_by_table": {"silver.orders": 1000}})
    lines, related = _three_order_lines(spark)

    report = gate(spark, cfg, "silver.order_lines", lines, run_id="run-vol0", stage="silver", related=related)

    assert "volume_within_band_of_previous_run" not in {r.name for r in report.results}
    assert any("no rows of this table in a previous successful run" in reason for reason in report.skipped)
