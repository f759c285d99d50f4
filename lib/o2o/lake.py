"""Delta I/O at the edge: table locations, create, idempotent append, MERGE upsert, snapshots, versions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any

import pyspark.sql.functions as F
from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql.types import StructType

from o2o.config import Config
from o2o.errors import UsageError
from o2o.frames import checkpointed
from o2o.spark import LISTING_PARALLELISM

LAYERS = ("bronze", "silver", "gold", "ops")
BOOKKEEPING_COLUMNS = ("updated_run_id", "run_id")
DELETE_MARK = "_o2o_delete"  # merge_upsert's source column that marks a row to delete
# Rows per file of a first load written sorted by `merge_upsert(prune_by=...)`: each file then holds one
# stretch of that column, which later increments skip by its min/max statistics.
CLUSTERED_FILE_ROWS = 250_000


class BadTableName(UsageError, ValueError):
    """A table name that is not '<layer>.<table>' with one of the lake's layers."""


class TableNotFound(UsageError, LookupError):
    """A table with no commit in this lake yet."""


def table_path(cfg: Config, name: str) -> str:
    """Location of table 'layer.table' under the lake root."""
    layer, _, table = name.partition(".")
    if layer not in LAYERS or not table:
        raise BadTableName(
            f"table name '{name}' must be '<layer>.<table>' with layer one of {', '.join(LAYERS)}"
        )
    return f"{cfg.resolve(cfg.lake.root).rstrip('/')}/{layer}/{table}"


def reports_dir(cfg: Config) -> str:
    """Folder for human-readable output (Data Docs, demo report)."""
    return (
        cfg.resolve(cfg.lake.reports)
        if cfg.lake.reports
        else f"{cfg.resolve(cfg.lake.root).rstrip('/')}/reports"
    )


def checkpoints_dir(cfg: Config) -> str:
    """Folder for Spark checkpoints (ALS lineage truncation)."""
    return (
        cfg.resolve(cfg.lake.checkpoints)
        if cfg.lake.checkpoints
        else f"{cfg.resolve(cfg.lake.root).rstrip('/')}/_checkpoints"
    )


def remove_stale_checkpoints(spark: SparkSession, cfg: Config, older_than_hours: int) -> list[str]:
    """Delete run folders in the checkpoints folder last modified more than `older_than_hours` ago.

    A run deletes its own checkpoints when it ends; only a killed run leaves its folder behind. Returns
    the names of the folders deleted.
    """
    fs, path = hadoop_path(spark, checkpoints_dir(cfg))
    if not fs.exists(path):
        return []
    cutoff_ms = (time.time() - older_than_hours * 3600) * 1000
    removed = []
    for status in fs.listStatus(path):
        if status.isDirectory() and status.getModificationTime() < cutoff_ms:
            fs.delete(status.getPath(), True)
            removed.append(status.getPath().getName())
    return sorted(removed)


def hadoop_path(spark: SparkSession, location: str) -> tuple[Any, Any]:
    """(Hadoop FileSystem, Path) of a location on any file system Spark can reach (local, s3a://, abfss://, ...)."""
    path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(location)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def staging_dir(cfg: Config, stage: str) -> str:
    """Scratch folder of a stage's intermediate results (<root>/_staging/<stage>); emptied by every run."""
    return f"{cfg.resolve(cfg.lake.root).rstrip('/')}/_staging/{stage}"


def stage_frame(df: DataFrame, cfg: Config, stage: str, name: str) -> DataFrame:
    """`df` computed once into Parquet under the stage's scratch folder and read back.

    For intermediate results a stage reads several times: later plans start from a file scan (short
    plans, column pruning, no memory pressure) instead of re-running or re-analysing the lineage.
    Rerun-safe: a run overwrites its own names, and `clear_staging` empties the folder when the stage ends.
    """
    path = f"{staging_dir(cfg, stage)}/{name}"
    # No dictionary encoding: scratch frames carry raw payloads and ids that are nearly all distinct, so
    # Parquet would fill each dictionary only to give it up. Measured on silver's sample run (JFR,
    # 2026-12-03): 10% of the JVM's samples were in its dictionary writer. Read once or twice, then deleted.
    df.write.mode("overwrite").option("parquet.enable.dictionary", "false").parquet(path)
    # With the schema given, the read skips Parquet schema inference, which is a Spark job of its own
    # (one task reading a footer) for every scratch frame.
    return df.sparkSession.read.schema(df.schema).parquet(path)


def clear_staging(spark: SparkSession, cfg: Config, stage: str) -> None:
    """Delete the stage's scratch folder (any Hadoop file system)."""
    fs, path = hadoop_path(spark, staging_dir(cfg, stage))
    if fs.exists(path):
        fs.delete(path, True)


def exists(spark: SparkSession, cfg: Config, name: str) -> bool:
    """True when the Delta table has at least one commit."""
    return DeltaTable.isDeltaTable(spark, table_path(cfg, name))


def require(spark: SparkSession, cfg: Config, name: str) -> None:
    """Raise TableNotFound, naming the location and the tables this lake has, unless `name` exists."""
    if exists(spark, cfg, name):
        return
    present = [
        f"{layer}.{status.getPath().getName()}"
        for layer in LAYERS
        for status in _list_folders(spark, f"{cfg.resolve(cfg.lake.root).rstrip('/')}/{layer}")
        if not status.getPath().getName().startswith(("_", "."))
    ]
    raise TableNotFound(
        f"table {name} does not exist at {table_path(cfg, name)}; "
        f"tables in this lake: {', '.join(sorted(present)) or 'none yet (run a stage first)'}"
    )


def _list_folders(spark: SparkSession, location: str) -> list[Any]:
    fs, path = hadoop_path(spark, location)
    return [status for status in fs.listStatus(path) if status.isDirectory()] if fs.exists(path) else []


def read(
    spark: SparkSession, cfg: Config, name: str, version: int | None = None, timestamp: str | None = None
) -> DataFrame:
    """The table, or the table as of a version or timestamp (time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    if timestamp is not None:
        reader = reader.option("timestampAsOf", timestamp)
    return reader.load(table_path(cfg, name))


def read_changes(
    spark: SparkSession, cfg: Config, name: str, after_version: int | None, up_to_version: int
) -> DataFrame:
    """Rows inserted after `after_version` up to `up_to_version` (change data feed; all rows when None)."""
    if after_version is None:
        return read(spark, cfg, name, version=up_to_version)
    return (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", after_version + 1)
        .option("endingVersion", up_to_version)
        .load(table_path(cfg, name))
        .where(F.col("_change_type") == "insert")
        .drop("_change_type", "_commit_version", "_commit_timestamp")
    )


def version(spark: SparkSession, cfg: Config, name: str) -> int | None:
    """Latest committed version, or None when the table does not exist yet."""
    # The newest commit is always a '<20-digit version>.json' file in _delta_log (log clean-up removes only
    # old ones): one directory listing, instead of a Spark job over the table history.
    fs, log = hadoop_path(spark, f"{table_path(cfg, name)}/_delta_log")
    if not fs.exists(log):
        return None
    versions = [
        int(file_name[:20])
        for file_name in (status.getPath().getName() for status in fs.listStatus(log))
        if len(file_name) == 25 and file_name.endswith(".json") and file_name[:20].isdigit()
    ]
    return max(versions) if versions else None


def last_commit(spark: SparkSession, cfg: Config, name: str) -> dict[str, Any] | None:
    """{version, operation, written (naive UTC)} of the table's newest commit, or None when it has none.

    Read from that commit's own log file (its `commitInfo` action, Delta's protocol): one small file
    read, instead of a Spark job over the history for each table a status page lists.
    """
    latest = version(spark, cfg, name)
    if latest is None:
        return None
    fs, commit_file = hadoop_path(spark, f"{table_path(cfg, name)}/_delta_log/{latest:020d}.json")
    stream = fs.open(commit_file)
    try:
        text = bytes(spark.sparkContext._jvm.org.apache.hadoop.io.IOUtils.readFullyToByteArray(stream))
    finally:
        stream.close()
    info: dict[str, Any] = {}
    for line in text.decode("utf-8").splitlines():
        action = json.loads(line) if line.strip() else {}
        if "commitInfo" in action:
            info = action["commitInfo"]
            break
    # The commit's time as Delta's history gives it: the in-commit timestamp when the table records one,
    # else the commit file's modification time (commitInfo.timestamp is when the commit began).
    millis = info.get("inCommitTimestamp") or fs.getFileStatus(commit_file).getModificationTime()
    return {
        "version": latest,
        "operation": info.get("operation"),
        "written": datetime.fromtimestamp(millis / 1000, timezone.utc).replace(tzinfo=None),
    }


def history(spark: SparkSession, cfg: Config, name: str, limit: int = 20) -> DataFrame:
    """Commit history, newest first: version, timestamp, operation, metrics."""
    return DeltaTable.forPath(spark, table_path(cfg, name)).history(limit)


def table_status(spark: SparkSession, cfg: Config, names: Iterable[str]) -> list[dict[str, Any]]:
    """{table, version, operation, written, rows} of each existing table in `names`, in that order.

    Each table costs a log listing, one small file read and a count from file statistics (driver-bound
    steps), so a few tables are looked up at once.
    """

    def one(name: str) -> dict[str, Any] | None:
        last = last_commit(spark, cfg, name)
        if last is None:
            return None
        return {"table": name, **last, "rows": read(spark, cfg, name).count()}

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="o2o-status") as pool:
        return [row for row in pool.map(one, list(names)) if row is not None]


def _drop_uncommitted_log(spark: SparkSession, cfg: Config, name: str) -> None:
    """Remove a `_delta_log` that holds no commit: what a run killed while creating the table leaves behind.

    Delta refuses to create a table over it (DELTA_TABLE_NOT_FOUND), so the rerun would fail. With no commit
    the table never existed and nothing in the folder was ever visible, so nothing is lost.
    """
    fs, log = hadoop_path(spark, f"{table_path(cfg, name)}/_delta_log")
    if fs.exists(log) and version(spark, cfg, name) is None:
        fs.delete(log, True)


def ensure_table(
    spark: SparkSession,
    cfg: Config,
    name: str,
    schema: StructType,
    partition_by: tuple[str, ...] = (),
    change_feed: bool = False,
    deletion_vectors: bool = False,
    stats_columns: tuple[str, ...] | None = None,
) -> None:
    """Create the table with its contract schema if it does not exist (no-op otherwise).

    `deletion_vectors` is for tables that MERGE updates and deletes in place: a changed row is marked
    deleted in its file and written anew, instead of Delta copying every other row of that file into a
    new one, so an increment's cost follows the rows it changes, not the table's size. Readers then skip
    marked rows (a little slower per scan until OPTIMIZE / `o2o maintain` rewrites those files).
    `stats_columns` limits the per-file min/max statistics Delta computes on every write (default: the
    first 32 columns) to the columns queries filter on; row counts are kept either way.
    """
    if exists(spark, cfg, name):
        return
    _drop_uncommitted_log(spark, cfg, name)
    builder = DeltaTable.createIfNotExists(spark).location(table_path(cfg, name)).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    if change_feed:
        builder = builder.property("delta.enableChangeDataFeed", "true")
    if deletion_vectors:
        builder = builder.property("delta.enableDeletionVectors", "true")
    if stats_columns is not None:
        builder = builder.property("delta.dataSkippingStatsColumns", ",".join(stats_columns))
    builder.execute()


def append_once(df: DataFrame, cfg: Config, name: str, app_id: str, txn_version: int) -> bool:
    """Append in one commit that Delta applies at most once per (app_id, txn_version); False if already applied."""
    spark = df.sparkSession
    before = version(spark, cfg, name)
    (
        df.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", txn_version)
        .save(table_path(cfg, name))
    )
    return version(spark, cfg, name) != before


def append(df: DataFrame, cfg: Config, name: str) -> None:
    """Plain append (for logs whose rows carry their own run id)."""
    df.write.format("delta").mode("append").option("mergeSchema", "true").save(table_path(cfg, name))


def _in_table_schema(df: DataFrame, target: DeltaTable) -> DataFrame:
    """The frame's columns in the table's order and types, for an append."""
    return df.select(*[F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) for f in target.toDF().schema])


def insert_new(df: DataFrame, cfg: Config, name: str) -> bool:
    """Append rows whose keys the caller knows are not in the table yet: one commit, none without rows.

    For sources computed as "what the table lacks" (an anti-join with it): a MERGE would join them with the
    whole table again only to find no match. False when there is nothing to append. The frame is read twice
    (the emptiness check, the write): pass a materialised one.
    """
    if df.isEmpty():
        return False
    target = DeltaTable.forPath(df.sparkSession, table_path(cfg, name))
    _in_table_schema(df, target).write.format("delta").mode("append").save(table_path(cfg, name))
    return True


def merge_upsert(
    df: DataFrame,
    cfg: Config,
    name: str,
    keys: tuple[str, ...],
    update_when_changed: tuple[str, ...] | None = None,
    newer_wins_by: str | None = None,
    prune_by: str | None = None,
    delete_keys: DataFrame | None = None,
) -> bool:
    """MERGE source rows into the table on `keys`: insert new keys, update matched ones; False when nothing changed.

    The source must hold one row per key (deduplicate first; Delta refuses otherwise).
    Matched rows update only when one of `update_when_changed` differs (default: every non-key column
    but the run id), so re-merging the same data makes no commit at all; `newer_wins_by` only lets a source row replace a target row that is older.
    Into a table without data the rows are appended (the same rows, one commit, no join).
    `prune_by` (a key column, e.g. an event time) lets an increment skip the target's files that hold only
    values below the source's smallest: such rows cannot match. The first load writes the table sorted by
    it, in files of at most CLUSTERED_FILE_ROWS rows, so that those files exist.
    `delete_keys` (the `keys` columns) are rows to delete in the same commit, e.g. persons merged into
    another: one MERGE rewrites the touched files once, and no reader sees the upsert without the delete
    (a key that is also among the source rows is upserted, not deleted).
    Delta's operation metrics of the commit are in the table history (`o2o history <table>`).
    """
    if delete_keys is not None and prune_by is not None:
        raise ValueError(
            "merge_upsert: delete_keys cannot be combined with prune_by (deletes may be anywhere)"
        )
    spark = df.sparkSession
    target = DeltaTable.forPath(spark, table_path(cfg, name))
    if update_when_changed is None:
        update_when_changed = tuple(c for c in df.columns if c not in keys and c not in BOOKKEEPING_COLUMNS)
    conditions = []
    if update_when_changed:
        conditions.append(" OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in update_when_changed))
    if newer_wins_by:
        conditions.append(f"s.`{newer_wins_by}` > t.`{newer_wins_by}`")
    condition = " AND ".join(f"({c})" for c in conditions) or None
    # Keep only rows that insert or really update: Delta rewrites every file a MERGE touches even when
    # the update condition is false, so a rerun of the same data must not reach MERGE at all.
    existing = target.toDF().select(
        *[
            F.col(c)
            for c in {*keys, *(update_when_changed or ()), *([newer_wins_by] if newer_wins_by else [])}
        ]
    )
    lowest = _lowest_key(df, prune_by, keys)
    if lowest is not None:
        existing = existing.where(F.col(prune_by) >= lowest)
    join_on = [F.col(f"s.{k}").eqNullSafe(F.col(f"t.{k}")) for k in keys]
    effective = (
        df.alias("s")
        .join(existing.alias("t"), join_on, "left")
        .where(F.col(f"t.{keys[0]}").isNull() | (F.expr(condition) if condition else F.lit(False)))
        .select("s.*")
    )
    if delete_keys is not None:
        # Only keys the table holds (deleting an absent key would be a MERGE that changes nothing) and
        # that the source does not upsert (Delta refuses two source rows for one key).
        doomed = (
            delete_keys.select(*keys)
            .distinct()
            .alias("d")
            .join(
                existing.select(*keys).alias("t"),
                [F.col(f"d.{k}").eqNullSafe(F.col(f"t.{k}")) for k in keys],
                "left_semi",
            )
            .alias("d")
            .join(
                df.select(*keys).alias("s"),
                [F.col(f"d.{k}").eqNullSafe(F.col(f"s.{k}")) for k in keys],
                "left_anti",
            )
        )
        effective = effective.withColumn(DELETE_MARK, F.lit(False)).unionByName(
            doomed.withColumn(DELETE_MARK, F.lit(True)), allowMissingColumns=True
        )
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    # Computed once: the emptiness check and the MERGE read the same rows instead of the lineage twice.
    with checkpointed(effective) as rows:
        if rows.isEmpty():
            return False
        if target.detail().select("numFiles").head()[0] == 0:
            # A table without data (its first load): every row is an insert, and an append writes them
            # without MERGE's join against the target. A killed append commits nothing; the rerun
            # finds the table empty again.
            first_load = _in_table_schema(rows, target)
            writer = first_load.write
            if prune_by is not None:
                writer = first_load.orderBy(prune_by).write.option("maxRecordsPerFile", CLUSTERED_FILE_ROWS)
            writer.format("delta").mode("append").save(table_path(cfg, name))
            return True
        merge_on = F.expr(on)
        if delete_keys is not None:
            _merge_with_deletes(target, rows, merge_on, condition)
            return True
        if lowest is not None:
            merge_on = merge_on & (F.col(f"t.`{prune_by}`") >= lowest)
        (
            target.alias("t")
            .merge(rows.alias("s"), merge_on)
            .whenMatchedUpdateAll(condition=condition)
            .whenNotMatchedInsertAll()
            .execute()
        )
    return True


def _merge_with_deletes(target: DeltaTable, rows: DataFrame, merge_on: Column, condition: str | None) -> None:
    """One MERGE of upserts and (DELETE_MARK) deletes: matched marked rows are deleted, the others upserted."""
    columns = [f.name for f in target.toDF().schema]
    values = {c: f"s.`{c}`" for c in columns}
    update_when = f"NOT s.`{DELETE_MARK}`" + (f" AND ({condition})" if condition else "")
    (
        target.alias("t")
        .merge(rows.alias("s"), merge_on)
        .whenMatchedDelete(condition=f"s.`{DELETE_MARK}`")
        .whenMatchedUpdate(condition=update_when, set=values)
        .whenNotMatchedInsert(condition=f"NOT s.`{DELETE_MARK}`", values=values)
        .execute()
    )


def _lowest_key(source: DataFrame, prune_by: str | None, keys: tuple[str, ...]) -> Column | None:
    """The source's smallest `prune_by` as a literal of its type, or None when nothing may be pruned.

    `prune_by` is part of the key, so a target row below it (or null, as the source then has no null
    there) matches no source row. The value goes through a string to stay exact (one aggregate row; bounded).
    """
    if prune_by is None:
        return None
    if prune_by not in keys:
        raise ValueError(f"prune_by={prune_by!r} must be one of the merge keys {keys}")
    low, nulls = source.agg(
        F.min(prune_by).cast("string"), F.count(F.when(F.col(prune_by).isNull(), F.lit(1)))
    ).head()
    if low is None or nulls:
        return None
    return F.lit(low).cast(source.schema[prune_by].dataType)


def replace_snapshot(df: DataFrame, cfg: Config, name: str, as_of: date) -> None:
    """Replace exactly the `as_of` partition of a gold snapshot table in one commit."""
    (
        df.write.format("delta")
        .mode("overwrite")
        .partitionBy("as_of")
        .option("replaceWhere", f"as_of = DATE'{as_of.isoformat()}'")
        .save(table_path(cfg, name))
    )


def overwrite(df: DataFrame, cfg: Config, name: str) -> None:
    """Replace the whole table in one commit (small derived tables)."""
    df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(table_path(cfg, name))


class RetentionTooShort(UsageError, ValueError):
    """VACUUM asked to drop history younger than 7 days without --force."""


def optimize(spark: SparkSession, cfg: Config, name: str, zorder_by: tuple[str, ...] = ()) -> dict[str, Any]:
    """Compact small files, clustering by `zorder_by` when given; returns Delta's metrics."""
    table = DeltaTable.forPath(spark, table_path(cfg, name)).optimize()
    result = table.executeZOrderBy(*zorder_by) if zorder_by else table.executeCompaction()
    return result.select("metrics.numFilesAdded", "metrics.numFilesRemoved").head().asDict()


def vacuum(spark: SparkSession, cfg: Config, name: str, retention_hours: int, force: bool = False) -> None:
    """Delete files no longer referenced by versions newer than `retention_hours` (time travel ends there)."""
    if retention_hours < 168 and not force:
        raise RetentionTooShort(
            f"VACUUM of {name} with {retention_hours}h retention would break time travel and readers older "
            "than that; use at least 168 hours (maintenance.vacuum_retention_hours) or pass --force"
        )
    # Delta lists the table's files in as many tasks as this setting says, 10,000 unless o2o made the session:
    # a VACUUM of a three-file table took 30-45 s on 2 cores, against 2.4 s with one task per core.
    settings = {LISTING_PARALLELISM: str(spark.sparkContext.defaultParallelism)}
    if retention_hours < 168:
        settings["spark.databricks.delta.retentionDurationCheck.enabled"] = "false"
    with _session_settings(spark, settings):
        DeltaTable.forPath(spark, table_path(cfg, name)).vacuum(retention_hours)


@contextmanager
def _session_settings(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """SQL settings changed for the block, then put back as they were (unset if they were)."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
