"""The gold stage on a temporary lake: every snapshot written, moves between as-ofs, reruns replace only their as-of."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from o2o import lake
from o2o.contracts import GOLD, SILVER
from o2o.gold import stage

FIRST, SECOND = date(2026, 3, 31), date(2026, 4, 30)


def _silver(spark, cfg, extra_orders: list[tuple] = ()) -> None:
    order_rows = [
        # customer, channel, store, day, amount
        ("c1", "web", None, datetime(2026, 3, 30, 10), "20.00"),
        ("c1", "pos", "S001", datetime(2026, 4, 29, 10), "30.00"),
        ("c2", "app", "S002", datetime(2026, 3, 1, 10), "80.00"),
        ("c3", "pos", "S001", datetime(2026, 2, 1, 10), "5.00"),
        ("c3", "pos", "S001", datetime(2026, 3, 31, 10), "5.00"),
        ("c4", "mini_program", None, datetime(2026, 4, 10, 10), "12.00"),
        (None, "pos", "S001", datetime(2026, 3, 31, 12), "7.00"),
        *extra_orders,
    ]
    orders, lines = [], []
    for i, (customer, channel, store, ts, amount) in enumerate(order_rows):
        fulfilment = "in_store" if channel == "pos" else ("pick_up_in_store" if store else "delivery")
        orders.append(
            (
                f"o{i}",
                channel,
                store,
                customer,
                ts,
                ts,
                "completed",
                fulfilment,
                "CNY",
                Decimal(amount),
                Decimal("0.00"),
                "r0",
            )
        )
        lines.append((f"o{i}", 1, "sku-a", 1, Decimal(amount), Decimal(amount), None, "r0"))
    customers = [
        (f"c{i}", f"M{i}", None, None, "web", datetime(2026, 1, 1), ["web"], True, True, "Shanghai", "r0")
        for i in range(1, 6)
    ]
    for table, rows in (("orders", orders), ("order_lines", lines), ("customers", customers)):
        spark.createDataFrame(rows, SILVER[table]).write.format("delta").mode("overwrite").save(
            lake.table_path(cfg, f"silver.{table}")
        )


def _snapshot(spark, cfg, table: str, as_of: date):
    return lake.read(spark, cfg, f"gold.{table}").where(F.col("as_of") == F.lit(as_of))


def test_gold_stage_writes_snapshots_moves_and_reruns_replace_only_their_as_of(spark, cfg, tmp_path, capsys):
    campaigns = tmp_path / "campaigns.yaml"
    campaigns.write_text(
        "campaigns:\n  - {campaign_id: spring, segments: [Champions, Loyal, Potential Loyalist, New, Promising, "
        'Need Attention, About to Sleep, At Risk, "Can\'t Lose Them", Hibernating, Lost], start_date: 2026-04-01}\n',
        encoding="utf-8",
    )
    cfg = cfg.replace(gold={"lookback_days": 60, "campaigns_file": str(campaigns), "control_share": 0.5})
    _silver(spark, cfg)

    first = stage.run(spark, cfg, FIRST, "run-1")
    second = stage.run(spark, cfg, SECOND, "run-2")

    for table in GOLD:
        assert lake.exists(spark, cfg, f"gold.{table}"), table
        assert lake.read(spark, cfg, f"gold.{table}").schema.fieldNames() == GOLD[table].fieldNames()
    assert first.details["previous_as_of"] is None and second.details["previous_as_of"] == FIRST
    # The campaign's list day (03-31) has its snapshot: read, not rebuilt and stored again.
    assert first.details["campaign_lists_stored"] == {} and second.details["campaign_lists_stored"] == {}
    # Progress on the console, table by table, with the rows written.
    printed = capsys.readouterr().out
    assert re.search(r"^\d\d:\d\d:\d\d \[gold\] gold\.customer_rfm: 3 rows as of 2026-03-31$", printed, re.M)
    assert "[gold] gold.customer_rfm: 3 rows as of 2026-04-30" in printed
    # Rows in: the orders placed up to each as-of (five by 03-31, all seven by 04-30).
    assert (first.rows_in, second.rows_in) == (5, 7)
    # As of 03-31 (window 01-31..03-31): c1, c2, c3; as of 04-30 (window 03-02..04-30): c1, c3, c4 (c2 dropped out).
    moves = _snapshot(spark, cfg, "segment_move_customers", SECOND).select(
        "customer_key", "previous_segment", "segment"
    )
    segments_first = {
        r["customer_key"]: r["segment"] for r in _snapshot(spark, cfg, "customer_rfm", FIRST).collect()
    }
    segments_second = {
        r["customer_key"]: r["segment"] for r in _snapshot(spark, cfg, "customer_rfm", SECOND).collect()
    }
    assert set(segments_first) == {"c1", "c2", "c3"} and set(segments_second) == {"c1", "c3", "c4"}
    expected_moves = spark.createDataFrame(
        [
            ("c1", segments_first["c1"], segments_second["c1"]),
            ("c2", segments_first["c2"], None),
            ("c3", segments_first["c3"], segments_second["c3"]),
            ("c4", None, segments_second["c4"]),
        ],
        "customer_key string, previous_segment string, segment string",
    )
    assert_df_equality(moves, expected_moves, ignore_row_order=True, ignore_nullable=True)
    previous = {
        r["customer_key"]: r["previous_segment"]
        for r in _snapshot(spark, cfg, "customer_rfm", SECOND).collect()
    }
    assert previous == {"c1": segments_first["c1"], "c3": segments_first["c3"], "c4": None}
    # The campaign started 04-01: its list is the stored one of 03-31 (c1, c2, c3), measured 04-01..04-14.
    effect = _snapshot(spark, cfg, "campaign_effect", SECOND).collect()
    assert len(effect) == 1 and effect[0]["list_as_of"] == FIRST and effect[0]["window_complete"]
    assert effect[0]["treated_customers"] + effect[0]["control_customers"] == 3
    assert _snapshot(spark, cfg, "campaign_effect", FIRST).count() == 0

    second_before = {t: sorted(_snapshot(spark, cfg, t, SECOND).collect(), key=repr) for t in GOLD}
    _silver(spark, cfg, extra_orders=[("c5", "web", None, datetime(2026, 3, 15, 10), "99.00")])
    stage.run(spark, cfg, FIRST, "run-3")

    rerun_first = _snapshot(spark, cfg, "customer_rfm", FIRST)
    assert sorted(r["customer_key"] for r in rerun_first.collect()) == ["c1", "c2", "c3", "c5"]
    for table in GOLD:
        assert sorted(_snapshot(spark, cfg, table, SECOND).collect(), key=repr) == second_before[table], table
    assert lake.read(spark, cfg, "gold.customer_rfm").groupBy("as_of").count().count() == 2


def test_a_campaign_list_without_a_stored_snapshot_is_stored_as_its_day_writes_it(spark, cfg, tmp_path):
    campaigns = tmp_path / "campaigns.yaml"
    campaigns.write_text(
        "campaigns:\n  - {campaign_id: spring, segments: [Champions, Loyal, Potential Loyalist, New, Promising, "
        'Need Attention, About to Sleep, At Risk, "Can\'t Lose Them", Hibernating, Lost], start_date: 2026-04-01}\n'
        "  - {campaign_id: standing, segments: [Champions]}\n",
        encoding="utf-8",
    )
    cfg = cfg.replace(gold={"lookback_days": 60, "campaigns_file": str(campaigns), "control_share": 0.5})
    _silver(spark, cfg)
    columns = ["campaign_id", "customer_key", "segment", "is_control"]

    # The lake's first gold run is as of 04-30: the list of 03-31 (the day before the start) was never stored.
    first = stage.run(spark, cfg, SECOND, "run-1")

    rebuilt = sorted(
        tuple(r) for r in _snapshot(spark, cfg, "segment_targets", FIRST).select(columns).collect()
    )
    assert first.details["campaign_lists_stored"] == {FIRST.isoformat(): len(rebuilt)}
    # Every campaign of that day, as in the first test: c1, c2, c3 bought in the 60 days up to 03-31.
    assert {r[1] for r in rebuilt if r[0] == "spring"} == {"c1", "c2", "c3"}
    effect = _snapshot(spark, cfg, "campaign_effect", SECOND).collect()
    assert len(effect) == 1 and effect[0]["list_as_of"] == FIRST
    assert effect[0]["treated_customers"] + effect[0]["control_customers"] == 3
    # The stored list is the one a run as of that day writes itself (the first test shows that a later run
    # reads such a snapshot instead of rebuilding it).
    stage.run(spark, cfg, FIRST, "run-2")
    written = sorted(
        tuple(r) for r in _snapshot(spark, cfg, "segment_targets", FIRST).select(columns).collect()
    )
    assert written == rebuilt


def test_gold_on_a_lake_without_silver_names_the_missing_tables_and_the_stage_to_run(spark, cfg):
    with pytest.raises(lake.TableNotFound) as missing:
        stage.run(spark, cfg, FIRST, "r-empty")

    message = str(missing.value)
    assert "silver.orders, silver.order_lines, silver.customers" in message
    assert message.endswith("run the silver stage first")
    assert not lake.exists(spark, cfg, "gold.customer_rfm")
