"""`o2o status` views: each stage's newest run, each table's newest gate, and which stage writes which table."""

from datetime import date, datetime

from chispa import assert_df_equality

from o2o.contracts import OPS, all_tables
from o2o.pipeline import STAGE_NAMES, producer
from o2o.status import gate_text, latest_gates, latest_runs

T1, T2 = datetime(2026, 6, 1, 10), datetime(2026, 6, 2, 10)
DAY = date(2026, 6, 1)


def _run(run_id, stage, started, status, error=None):
    return (run_id, stage, DAY, "local", status, started, started, 1.0, "{}", "{}", 1, 1, 0, "{}", error)


def test_latest_run_per_stage_is_the_newest_started(spark):
    runs = spark.createDataFrame(
        [
            _run("s-old", "silver", T1, "failed", "boom"),
            _run("s-new", "silver", T2, "succeeded"),
            _run("g-1", "gold", T1, "succeeded"),
        ],
        OPS["pipeline_runs"],
    )

    expected = spark.createDataFrame(
        [("silver", "s-new", DAY, "succeeded", T2, None), ("gold", "g-1", DAY, "succeeded", T1, None)],
        "stage string, run_id string, as_of date, status string, finished_at timestamp, error string",
    )
    assert_df_equality(latest_runs(runs), expected, ignore_row_order=True, ignore_nullable=True)


def _check(table, name, severity, success, checked_at, accepted=False, run_id="r"):
    return (
        run_id, "silver", table, 1, DAY, name, "expect_x", None, severity, success,
        None, None, 10, 0, 0.0, accepted, None, checked_at,
    )  # fmt: skip


def test_newest_gate_per_table_summed_up(spark):
    results = spark.createDataFrame(
        [
            # silver.orders failed yesterday, passed today: today's gate counts, not the history.
            _check("silver.orders", "a", "critical", False, T1, run_id="r1"),
            _check("silver.orders", "a", "critical", True, T2, run_id="r2"),
            _check("silver.orders", "b", "warn", True, T2, run_id="r2"),
            # A failed warn check only.
            _check("silver.customers", "a", "critical", True, T2),
            _check("silver.customers", "b", "warn", False, T2),
            # A critical failure an operator accepted, next to a warn failure.
            _check("gold.customer_rfm", "a", "critical", False, T2, accepted=True),
            _check("gold.customer_rfm", "b", "warn", False, T2),
            # A critical failure nobody accepted (a check that could not run has success null).
            _check("silver.products", "a", "critical", None, T1),
            _check("silver.products", "b", "critical", True, T1),
        ],
        OPS["dq_results"],
    )

    expected = spark.createDataFrame(
        [
            ("silver.orders", T2, "r2", 2, 0, 0, 0, "passed"),
            ("silver.customers", T2, "r", 2, 0, 0, 1, "warnings"),
            ("gold.customer_rfm", T2, "r", 2, 0, 1, 1, "accepted"),
            ("silver.products", T1, "r", 2, 1, 0, 0, "failed"),
        ],
        "table_name string, checked_at timestamp, run_id string, checks long, failed_critical long, "
        "accepted long, failed_warn long, result string",
    )
    assert_df_equality(latest_gates(results), expected, ignore_row_order=True, ignore_nullable=True)


def test_gate_text():
    gate = {"checks": 12, "failed_critical": 2, "accepted": 0, "failed_warn": 1, "result": "failed"}
    assert gate_text(gate) == "failed: 2 critical of 12"
    assert gate_text({**gate, "result": "warnings"}) == "warnings: 1 of 12"
    assert gate_text({**gate, "result": "passed"}) == "passed (12 checks)"
    assert gate_text(None) == "-"


def test_every_table_but_the_shared_bookkeeping_has_one_producing_stage():
    producers = {table: producer(table) for table in all_tables()}

    assert {t for t, stage in producers.items() if stage is None} == {"ops.pipeline_runs", "ops.dq_results"}
    assert set(producers.values()) - {None} == set(STAGE_NAMES)
    assert producers["bronze.pos_sales"] == "bronze" and producers["ops.bronze_files"] == "bronze"
    assert producers["silver.identity_edges"] == "silver" and producers["ops.silver_watermarks"] == "silver"
    assert producers["gold.recommendations"] == "recommend" and producers["gold.model_metrics"] == "train"
    assert producers["ops.models"] == "train"
