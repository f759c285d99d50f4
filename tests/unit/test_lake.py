"""Lake helpers: table versions from the commit log, the stage scratch folder."""

from pathlib import Path

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
