"""Derived columns that turn cross-table and table-level rules into ordinary GX expectations."""

from __future__ import annotations

from datetime import date, datetime

from chispa import assert_df_equality

from o2o.quality.checks import Inputs, plan_suite
from o2o.quality.suites import Check, Suite


def _suite(*checks: Check) -> Suite:
    return Suite(table="t.t", path="-", checks=checks)


def test_references_marks_orphans_and_ignores_null_keys(spark):
    orders = spark.createDataFrame(
        [("o1", "c1"), ("o2", "c9"), ("o3", None)], "order_id string, customer_key string"
    )
    customers = spark.createDataFrame([("c1",), ("c2",)], "customer_key string")
    check = Check(
        "references(customer_key)",
        "references",
        "warn",
        "customer_key",
        {"column": "customer_key", "table": "silver.customers", "key": "customer_key"},
    )

    plan = plan_suite(orders, _suite(check), Inputs(related={"silver.customers": customers}))

    (item,) = plan.planned
    column = item.kwargs["column"]
    assert item.expectation_type == "column_values_to_be_null"
    expected = spark.createDataFrame(
        [("o1", None), ("o2", "c9"), ("o3", None)], f"order_id string, {column} string"
    )
    assert_df_equality(
        plan.frame.select("order_id", column), expected, ignore_row_order=True, ignore_nullable=True
    )
    assert [r["order_id"] for r in item.failing_rows(plan.frame).collect()] == ["o2"]


def test_references_is_skipped_when_the_other_table_is_missing(spark):
    orders = spark.createDataFrame([("o1", "c1")], "order_id string, customer_key string")
    check = Check(
        "references(customer_key)",
        "references",
        "warn",
        "customer_key",
        {"column": "customer_key", "table": "silver.customers", "key": "customer_key"},
    )
    plan = plan_suite(orders, _suite(check), Inputs())
    assert plan.planned == ()
    assert "silver.customers is not available" in plan.skipped[0]


def test_exactly_k_flags_customers_with_another_count(spark):
    recos = spark.createDataFrame(
        [("c1", 1), ("c1", 2), ("c2", 1), ("c3", 1), ("c3", 2), ("c3", 3)], "customer_key string, rank int"
    )
    check = Check("exactly_k", "exactly_k_per_key", "critical", None, {"key": ["customer_key"], "k": 2})
    plan = plan_suite(recos, _suite(check), Inputs())
    column = plan.planned[0].kwargs["column"]
    expected = spark.createDataFrame(
        [("c1", None), ("c1", None), ("c2", 1), ("c3", 3), ("c3", 3), ("c3", 3)],
        f"customer_key string, {column} long",
    )
    assert_df_equality(
        plan.frame.select("customer_key", column), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_already_purchased_items_are_flagged_returns_and_anonymous_orders_are_not(spark):
    recos = spark.createDataFrame(
        [("c1", "a"), ("c1", "b"), ("c1", "c"), ("c2", "a")], "customer_key string, sku string"
    )
    orders = spark.createDataFrame(
        [("o1", "c1"), ("o2", "c1"), ("o3", None)], "order_id string, customer_key string"
    )
    lines = spark.createDataFrame(
        [("o1", "a", 1), ("o2", "b", -1), ("o3", "a", 1)], "order_id string, sku string, quantity int"
    )
    check = Check(
        "npp",
        "not_previously_purchased",
        "critical",
        "sku",
        {"column": "sku", "customer_column": "customer_key"},
    )
    plan = plan_suite(
        recos, _suite(check), Inputs(related={"silver.order_lines": lines, "silver.orders": orders})
    )
    column = plan.planned[0].kwargs["column"]
    expected = spark.createDataFrame(
        [("c1", "a", "a"), ("c1", "b", None), ("c1", "c", None), ("c2", "a", None)],
        f"customer_key string, sku string, {column} string",
    )
    assert_df_equality(
        plan.frame.select("customer_key", "sku", column),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_quarantine_share_is_quarantined_over_bronze_rows_of_the_same_feed(spark):
    quarantine = spark.createDataFrame(
        [("pos_sales", "r1"), ("pos_sales", "r2"), ("reviews", "r3")], "feed string, record_id string"
    )
    bronze = spark.createDataFrame([("pos_sales", 100), ("reviews", 10)], "feed string, rows long")
    check = Check("qs", "quarantine_share_below", "warn", "feed", {"column": "feed", "max_share": 0.05})
    plan = plan_suite(quarantine, _suite(check), Inputs(feed_rows=bronze))
    item = plan.planned[0]
    assert (item.expectation_type, item.kwargs["max_value"]) == ("column_max_to_be_between", 0.05)
    expected = spark.createDataFrame(
        [("r1", 0.02), ("r2", 0.02), ("r3", 0.1)], f"record_id string, {item.kwargs['column']} double"
    )
    assert_df_equality(
        plan.frame.select("record_id", item.kwargs["column"]),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert [r["feed"] for r in item.failing_rows(plan.frame).collect()] == ["reviews"]


def test_freshness_is_days_between_event_and_as_of_and_volume_is_a_band(spark):
    events = spark.createDataFrame(
        [(datetime(2026, 8, 20, 23, 0),), (datetime(2026, 8, 25, 1, 0),)], "event_ts timestamp"
    )
    fresh = Check("fresh(event_ts)", "fresh", "warn", "event_ts", {"column": "event_ts", "max_age_days": 3})
    volume = Check("volume", "volume_within_band_of_previous_run", "warn", None, {"band": 0.5})
    plan = plan_suite(events, _suite(fresh, volume), Inputs(as_of=date(2026, 9, 1), previous_rows=101))
    freshness, band = plan.planned
    assert freshness.kwargs["max_value"] == 3
    ages = sorted(r[0] for r in plan.frame.select(freshness.kwargs["column"]).collect())
    assert ages == [7, 12]
    assert (band.expectation_type, band.kwargs) == (
        "table_row_count_to_be_between",
        {"min_value": 50, "max_value": 152},
    )


def test_freshness_and_volume_are_skipped_without_as_of_or_previous_run(spark):
    events = spark.createDataFrame([(datetime(2026, 8, 20),)], "event_ts timestamp")
    fresh = Check("fresh(event_ts)", "fresh", "warn", "event_ts", {"column": "event_ts", "max_age_days": 3})
    volume = Check("volume", "volume_within_band_of_previous_run", "warn", None, {"band": 0.5})
    plan = plan_suite(events, _suite(fresh, volume), Inputs())
    assert plan.planned == ()
    assert [note.split(":")[0] for note in plan.skipped] == ["fresh(event_ts)", "volume"]


def test_native_failing_rows_pick_the_rows_that_break_the_rule(spark):
    frame = spark.createDataFrame([("a", 0), ("b", 3), ("c", 9), ("d", None)], "k string, score int")
    between = Check(
        "between",
        "column_values_to_be_between",
        "critical",
        "score",
        {"column": "score", "min_value": 1, "max_value": 5},
    )
    in_set = Check(
        "in_set", "column_values_to_be_in_set", "critical", "k", {"column": "k", "value_set": ["a", "b"]}
    )
    plan = plan_suite(frame, _suite(between, in_set), Inputs())
    assert sorted(r["k"] for r in plan.planned[0].failing_rows(plan.frame).collect()) == ["a", "c"]
    assert sorted(r["k"] for r in plan.planned[1].failing_rows(plan.frame).collect()) == ["c", "d"]
    assert plan.planned[0].threshold == "column values >= 1 and <= 5"


def test_a_row_condition_limits_the_failing_rows_to_the_rows_it_selects(spark):
    frame = spark.createDataFrame(
        [("o1", "web", None), ("o2", "pos", None), ("o3", "app", "CNY")],
        "order_id string, channel string, currency string",
    )
    params = {"column": "currency", "row_condition": "channel <> 'pos'", "condition_parser": "spark"}
    not_null = Check("currency", "column_values_to_not_be_null", "warn", "currency", params)
    plan = plan_suite(frame, _suite(not_null), Inputs())
    assert [r["order_id"] for r in plan.planned[0].failing_rows(plan.frame).collect()] == ["o1"]
    assert plan.planned[0].threshold == "no nulls where channel <> 'pos'"


def test_with_example_columns_the_frame_keeps_only_what_checks_and_examples_read(spark):
    records = spark.createDataFrame(
        [("o1", "2026-06-01", '{"order_id": "o1"}', "x", None)],
        "order_id string, order_ts string, _raw string, note string, _corrupt_record string",
    )
    checks = (
        Check(
            "not_null(order_id)",
            "column_values_to_not_be_null",
            "critical",
            "order_id",
            {"column": "order_id"},
        ),
        Check(
            "corrupt", "column_values_to_be_null", "warn", "_corrupt_record", {"column": "_corrupt_record"}
        ),
        Check("fresh", "fresh", "warn", "order_ts", {"column": "order_ts", "max_age_days": 3}),
    )
    inputs = Inputs(as_of=date(2026, 6, 2))

    narrowed = plan_suite(records, Suite("t.t", "-", checks, example_columns=("order_id", "note")), inputs)
    everything = plan_suite(records, Suite("t.t", "-", checks), inputs)

    # _raw is read by no check and shown in no example; a checked column stays for its example rows.
    assert narrowed.frame.columns == [
        "order_id",
        "order_ts",
        "note",
        "_corrupt_record",
        "_dq_age_days_order_ts",
    ]
    assert narrowed.frame.first()["_dq_age_days_order_ts"] == 1
    assert everything.frame.columns == [*records.columns, "_dq_age_days_order_ts"]
