"""Lake helpers: table versions from the commit log, the stage scratch folder, MERGE upserts (also pruned by a
key column)."""

from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import pyspark.sql.functions as F
from delta.tables import DeltaTable

from o2o import lake

SCHEMA = "id long, name string"


def test_version_follows_every_commit(spark, cfg):
    assert lake.version(spark, cfg, "ops.things") is None
    lake.ensure_table(spark, cfg, "ops.things", spark.createDataFrame([], SCHEMA).schema)
    assert lake.version(spark, cfg, "ops.things") == 0
    lake.append(spark.createDataFrame([(1, "a")], SCHEMA), cfg, "ops.things")
    lake.append(spark.createDataFrame([(2, "b")], SCHEMA), cfg, "ops.things")
    history = DeltaTable.forPath(spark, lake.table_path(cfg, "ops.things")).history()
    assert lake.version(spark, cfg, "ops.things") == 2 == history.agg({"version": "max"}).head()[0]


def test_last_commit_and_status_agree_with_deltas_history(spark, cfg):
    assert lake.last_commit(spark, cfg, "ops.things") is None
    lake.ensure_table(spark, cfg, "ops.things", spark.createDataFrame([], SCHEMA).schema)
    lake.append(spark.createDataFrame([(1, "a"), (2, "b")], SCHEMA), cfg, "ops.things")
    lake.merge_upsert(spark.createDataFrame([(2, "B"), (3, "c")], SCHEMA), cfg, "ops.things", ("id",))

    last = lake.last_commit(spark, cfg, "ops.things")
    newest = lake.history(spark, cfg, "ops.things", 1).head()
    assert (last["version"], last["operation"]) == (2, "MERGE") == (newest["version"], newest["operation"])
    # PySpark hands timestamps over in the Python process's local time; last_commit's are UTC.
    history_utc = newest["timestamp"].astimezone(timezone.utc).replace(tzinfo=None)
    assert abs((last["written"] - history_utc).total_seconds()) < 0.001
    assert lake.table_status(spark, cfg, ["ops.missing", "ops.things"]) == [
        {"table": "ops.things", "version": 2, "operation": "MERGE", "written": last["written"], "rows": 3}
    ]


def test_staged_frame_is_read_back_from_the_scratch_folder_and_cleared(spark, cfg):
    frame = spark.createDataFrame([(1, "a"), (2, "b")], SCHEMA)
    staged = lake.stage_frame(frame.where("id > 1"), cfg, "silver", "picked")
    assert [tuple(row) for row in staged.collect()] == [(2, "b")]
    assert "FileScan parquet" in staged._jdf.queryExecution().executedPlan().toString()
    folder = Path(lake.staging_dir(cfg, "silver"))
    assert (folder / "picked").is_dir()
    lake.clear_staging(spark, cfg, "silver")
    assert not folder.exists()
    lake.clear_staging(spark, cfg, "silver")  # nothing there: no error


def test_table_whose_creation_was_killed_before_its_first_commit_is_created(spark, cfg):
    # What a SIGKILL during the first commit left in a bronze run: a temporary commit file, no version 0.
    log = Path(lake.table_path(cfg, "ops.things")) / "_delta_log"
    (log / "_staged_commits").mkdir(parents=True)
    (log / ".00000000000000000000.json.6488f360-57bc-4620-9bb2-9f67cd6f0536.tmp").write_text("{}\n")

    lake.ensure_table(spark, cfg, "ops.things", spark.createDataFrame([], SCHEMA).schema)
    lake.append(spark.createDataFrame([(1, "a")], SCHEMA), cfg, "ops.things")

    assert lake.version(spark, cfg, "ops.things") == 1
    assert [tuple(row) for row in lake.read(spark, cfg, "ops.things").collect()] == [(1, "a")]


def _rows(spark, cfg, name):
    return sorted(tuple(row) for row in lake.read(spark, cfg, name).collect())


def _operations(spark, cfg, name):
    return [row["operation"] for row in lake.history(spark, cfg, name).orderBy("version").collect()]


def test_upsert_appends_into_an_empty_table_then_merges(spark, cfg):
    lake.ensure_table(spark, cfg, "ops.things", spark.createDataFrame([], SCHEMA).schema)
    first = spark.createDataFrame([("a", 1), ("b", 2)], "name string, id int")  # other order, narrower type

    assert lake.merge_upsert(first, cfg, "ops.things", ("id",))
    assert _rows(spark, cfg, "ops.things") == [(1, "a"), (2, "b")]
    assert lake.read(spark, cfg, "ops.things").schema["id"].dataType.simpleString() == "bigint"

    assert not lake.merge_upsert(first, cfg, "ops.things", ("id",))  # the same rows again: no commit
    assert lake.merge_upsert(spark.createDataFrame([(2, "B"), (3, "c")], SCHEMA), cfg, "ops.things", ("id",))
    assert _rows(spark, cfg, "ops.things") == [(1, "a"), (2, "B"), (3, "c")]
    assert _operations(spark, cfg, "ops.things") == ["CREATE TABLE", "WRITE", "MERGE"]


def test_upsert_with_delete_keys_deletes_and_upserts_in_one_commit(spark, cfg):
    lake.ensure_table(spark, cfg, "ops.things", spark.createDataFrame([], SCHEMA).schema)
    lake.append(spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], SCHEMA), cfg, "ops.things")
    # 2 is retired, 1 is updated, 4 is new; 9 is not in the table and 1 is also upserted: neither is deleted.
    retired = spark.createDataFrame([(2,), (9,), (1,)], "id long")

    assert lake.merge_upsert(
        spark.createDataFrame([(1, "A"), (4, "d")], SCHEMA), cfg, "ops.things", ("id",), delete_keys=retired
    )
    assert _rows(spark, cfg, "ops.things") == [(1, "A"), (3, "c"), (4, "d")]
    assert _operations(spark, cfg, "ops.things") == ["CREATE TABLE", "WRITE", "MERGE"]
    metrics = _last_merge_metrics(spark, cfg, "ops.things")
    counts = ("numTargetRowsDeleted", "numTargetRowsUpdated", "numTargetRowsInserted")
    assert tuple(metrics[c] for c in counts) == ("1", "1", "1")
    # The same again: 2 is gone, 1 and 4 unchanged: no commit.
    assert not lake.merge_upsert(
        spark.createDataFrame([(1, "A"), (4, "d")], SCHEMA), cfg, "ops.things", ("id",), delete_keys=retired
    )
    assert lake.version(spark, cfg, "ops.things") == 2


EVENTS = "id long, ts timestamp, name string"


def _files_by_range(spark, cfg, name):
    """{(lowest ts, highest ts): local path} of the table's data files."""
    return {
        (row["low"], row["high"]): Path(urlparse(row["file"]).path)
        for row in lake.read(spark, cfg, name)
        .groupBy(F.input_file_name().alias("file"))
        .agg(F.min("ts").alias("low"), F.max("ts").alias("high"))
        .collect()
    }


def test_upsert_pruned_by_a_key_column_never_reads_older_files(spark, cfg, monkeypatch, tmp_path):
    monkeypatch.setattr(lake, "CLUSTERED_FILE_ROWS", 2)
    lake.ensure_table(spark, cfg, "silver.events", spark.createDataFrame([], EVENTS).schema)
    day = [datetime(2026, 6, d, 12) for d in range(1, 7)]
    first = spark.createDataFrame(
        [
            (1, day[5], "f"),
            (1, day[0], "a"),
            (2, day[3], "d"),
            (2, day[1], "b"),
            (3, day[4], "e"),
            (3, day[2], "c"),
        ],
        EVENTS,
    ).repartition(3)

    assert lake.merge_upsert(first, cfg, "silver.events", ("id", "ts"), prune_by="ts")
    # Written sorted by ts in files of two rows: each file holds its own stretch of days.
    files = _files_by_range(spark, cfg, "silver.events")
    assert sorted(files) == [(day[0], day[1]), (day[2], day[3]), (day[4], day[5])]

    # The files of days 1-4 are moved away: an increment from day 5 on must not need them.
    for stretch in [(day[0], day[1]), (day[2], day[3])]:
        files[stretch].rename(tmp_path / files[stretch].name)
    increment = spark.createDataFrame([(3, day[4], "E"), (4, day[5], "g")], EVENTS)
    assert lake.merge_upsert(increment, cfg, "silver.events", ("id", "ts"), prune_by="ts")
    for stretch in [(day[0], day[1]), (day[2], day[3])]:
        (tmp_path / files[stretch].name).rename(files[stretch])

    assert _rows(spark, cfg, "silver.events") == [
        (1, day[0], "a"), (1, day[5], "f"), (2, day[1], "b"), (2, day[3], "d"), (3, day[2], "c"),
        (3, day[4], "E"), (4, day[5], "g"),
    ]  # fmt: skip


def test_upsert_pruned_by_a_key_column_still_updates_an_old_row(spark, cfg, monkeypatch):
    monkeypatch.setattr(lake, "CLUSTERED_FILE_ROWS", 1)
    lake.ensure_table(spark, cfg, "silver.events", spark.createDataFrame([], EVENTS).schema)
    old, new = datetime(2026, 6, 1), datetime(2026, 6, 9)
    lake.merge_upsert(
        spark.createDataFrame([(1, old, "a"), (2, new, "b")], EVENTS),
        cfg,
        "silver.events",
        ("id", "ts"),
        prune_by="ts",
    )

    late = spark.createDataFrame(
        [(1, old, "A"), (3, new, "c")], EVENTS
    )  # a late correction of the oldest row
    assert lake.merge_upsert(late, cfg, "silver.events", ("id", "ts"), prune_by="ts")

    assert _rows(spark, cfg, "silver.events") == [(1, old, "A"), (2, new, "b"), (3, new, "c")]


def _last_merge_metrics(spark, cfg, name):
    return lake.history(spark, cfg, name, 1).head()["operationMetrics"]


def test_upsert_into_a_table_with_deletion_vectors_copies_no_unchanged_row(spark, cfg):
    # 300 rows in 3 files; one row changes. Without deletion vectors Delta rewrites its whole file (99 other
    # rows copied); with them the changed row is marked deleted in place and written anew.
    schema = spark.createDataFrame([], SCHEMA).schema
    lake.ensure_table(spark, cfg, "silver.things", schema, deletion_vectors=True)
    lake.ensure_table(spark, cfg, "silver.plain_things", schema)
    rows = spark.range(300).selectExpr("id", "concat('n', id) AS name").repartitionByRange(3, "id")
    change = spark.createDataFrame([(7, "seven"), (300, "new")], SCHEMA)
    for name in ("silver.things", "silver.plain_things"):
        lake.merge_upsert(rows, cfg, name, ("id",))
        assert lake.merge_upsert(change, cfg, name, ("id",))

    with_dvs = _last_merge_metrics(spark, cfg, "silver.things")
    plain = _last_merge_metrics(spark, cfg, "silver.plain_things")
    assert (with_dvs["numTargetRowsCopied"], with_dvs["numTargetFilesRemoved"]) == ("0", "0")
    assert with_dvs["numTargetDeletionVectorsAdded"] == "1"
    assert int(plain["numTargetRowsCopied"]) >= 99  # the same MERGE on a plain table
    expected = sorted([(i, f"n{i}") for i in range(300) if i != 7] + [(7, "seven"), (300, "new")])
    assert _rows(spark, cfg, "silver.things") == expected == _rows(spark, cfg, "silver.plain_things")
