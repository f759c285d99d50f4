"""`o2o status`, `o2o history` and `o2o show --version` on a small lake with runs and quality results."""

from datetime import date, datetime

import pytest

from o2o import lake
from o2o.cli import main
from o2o.contracts import OPS
from o2o.frames import local_frame

DAY = date(2026, 6, 1)


@pytest.fixture()
def small_lake(spark, cfg, monkeypatch):
    monkeypatch.setenv("O2O__LAKE__ROOT", cfg.lake.root)
    monkeypatch.setenv("O2O__LAKE__LANDING", cfg.lake.landing)
    for rows in ([("c1", "Shanghai"), ("c2", "Beijing")], [("c3", "Hangzhou")]):  # versions 0 and 1
        spark.createDataFrame(rows, "customer_key string, city string").write.format("delta").mode(
            "append"
        ).save(lake.table_path(cfg, "silver.customers"))
    runs = [
        ("r1", "silver", DAY, "local", "failed", datetime(2026, 6, 1, 9), datetime(2026, 6, 1, 9, 5), 300.0,
         "{}", "{}", 0, 0, 0, "{}", "RuntimeError: boom"),
        ("r2", "silver", DAY, "local", "succeeded", datetime(2026, 6, 1, 10), datetime(2026, 6, 1, 10, 5), 300.0,
         "{}", "{}", 3, 3, 0, "{}", None),
    ]  # fmt: skip
    lake.append(local_frame(spark, runs, OPS["pipeline_runs"]), cfg, "ops.pipeline_runs")
    checks = [
        ("r1", "silver", "silver.customers", 0, DAY, "key_not_null", "expect_column_values_to_not_be_null",
         "customer_key", "critical", False, None, None, 3, 1, 33.3, False, None, datetime(2026, 6, 1, 9, 4)),
        ("r2", "silver", "silver.customers", 0, DAY, "key_not_null", "expect_column_values_to_not_be_null",
         "customer_key", "critical", True, None, None, 3, 0, 0.0, False, None, datetime(2026, 6, 1, 10, 4)),
        ("r2", "silver", "silver.customers", 0, DAY, "city_known", "expect_column_values_to_be_in_set",
         "city", "warn", False, None, None, 3, 1, 33.3, False, None, datetime(2026, 6, 1, 10, 4)),
    ]  # fmt: skip
    lake.append(local_frame(spark, checks, OPS["dq_results"]), cfg, "ops.dq_results")
    return cfg


def _line(out: str, table: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(table + " "))


def test_status_lists_each_table_with_its_stage_last_run_and_newest_gate(small_lake, capsys):
    assert main(["status"]) == 0

    out = capsys.readouterr().out
    customers = _line(out, "silver.customers").split()
    assert customers[:3] == ["silver.customers", "1", "3"]  # version 1, three rows
    assert customers[5:8] == ["silver", "succeeded", "2026-06-01"]  # r2 is newer than the failed r1
    assert "warnings: 1 of 2" in _line(out, "silver.customers")  # r2's gate, not r1's critical failure
    runs_line = _line(out, "ops.pipeline_runs").split()
    assert runs_line[1:3] == ["0", "2"] and runs_line[5:7] == ["-", "-"]  # no stage writes it alone
    assert "recent runs" in out


def test_history_and_show_read_a_table_as_of_an_older_version(small_lake, capsys):
    assert main(["history", "silver.customers"]) == 0
    history = capsys.readouterr().out
    assert [line.split("|")[1].strip() for line in history.splitlines() if line.startswith("|")][1:] == [
        "1",
        "0",
    ]

    assert main(["show", "silver.customers", "--version", "0"]) == 0
    shown = capsys.readouterr().out
    assert "c1" in shown and "c2" in shown and "c3" not in shown

    assert main(["show", "silver.customers"]) == 0
    assert "c3" in capsys.readouterr().out


def test_a_missing_table_or_model_is_a_message_naming_what_the_lake_has_not_a_traceback(small_lake, capsys):
    assert main(["show", "silver.orders"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("o2o: table silver.orders does not exist at ")
    assert "tables in this lake: ops.dq_results, ops.pipeline_runs, silver.customers" in error

    assert main(["history", "orders"]) == 2
    assert "table name 'orders' must be '<layer>.<table>'" in capsys.readouterr().err

    assert main(["dq", "gold.customer_rfm"]) == 2
    assert "table gold.customer_rfm does not exist" in capsys.readouterr().err

    assert main(["show", "silver.customers", "--version", "7"]) == 2
    assert "version 7" in capsys.readouterr().err

    assert main(["show", "silver.customers", "--timestamp", "2020-01-01"]) == 2
    error = capsys.readouterr().err
    assert "is before the earliest version available to this table" in error and "SQLSTATE" not in error
    assert error.count("\n") == 1  # one line, though Delta's message spans two

    assert main(["recommend", "c1"]) == 2
    assert "train a model first" in capsys.readouterr().err


def test_status_of_an_empty_lake_says_there_is_nothing_yet_and_how_to_fill_it(
    spark, cfg, monkeypatch, capsys
):
    monkeypatch.setenv("O2O__LAKE__ROOT", cfg.lake.root)

    assert main(["status"]) == 0

    out = capsys.readouterr().out
    assert f"(no tables yet under {cfg.lake.root}: run `o2o demo`" in out
    assert "recent runs" not in out


def test_a_stage_stopped_by_a_missing_input_exits_2_and_records_the_failed_run(
    spark, cfg, monkeypatch, capsys
):
    monkeypatch.setenv("O2O__LAKE__ROOT", cfg.lake.root)
    monkeypatch.setenv("O2O__LAKE__LANDING", cfg.lake.landing)

    assert main(["run", "gold", "--as-of", DAY.isoformat()]) == 2

    assert "o2o: stage 'gold' failed: gold reads silver.orders" in capsys.readouterr().err
    runs = lake.read(spark, cfg, "ops.pipeline_runs").collect()
    assert [(r["stage"], r["status"]) for r in runs] == [("gold", "failed")]
    assert "TableNotFound" in runs[0]["error"]
