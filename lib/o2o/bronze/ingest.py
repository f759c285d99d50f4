"""Bronze: every landing file of every feed into its own Delta table, exactly once, malformed records kept.

Exactly-once design (a file ledger, not Structured Streaming): the truth of which files are ingested is the
bronze table's own `_source_file` column, so it commits atomically with the rows themselves and can never
drift from them. Files are compared by their path below the landing root (`ledger_key`), so a landing folder
read through another mount or URI scheme is not ingested twice. A run lists the landing folder, subtracts
the files already in the table and appends all new files of a feed in ONE Delta commit. A run killed
before that commit leaves nothing; its rerun sees the same new files. A run killed after it sees them as
ingested. The commit also carries Delta's txnAppId/txnVersion (the table version it was planned against),
so two overlapping runs of the same batch cannot both land it. Streaming `availableNow` would give the
same guarantee but needs one checkpoint per feed and cannot pick the CSV header per file, which the
header-drift handling below requires.

`ops.bronze_files` keeps that truth at hand: each feed's ingested files with the bronze table version they
were read from. A run trusts it only for a feed whose table is still at that version; otherwise (a run
killed between its bronze commits and the ledger's, a RESTORE, an OPTIMIZE) it reads the files from the
table again and rewrites the ledger. Reading `_source_file` from every bronze table cost a bronze run
that found nothing new 37 s of its time on the demo lake.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from urllib.parse import unquote

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from o2o import lake, quality
from o2o.config import Config
from o2o.contracts import (
    CORRUPT,
    FEED_CHANNEL,
    FEEDS,
    LANDING,
    LANDING_FORMAT,
    OPS,
    bronze_schema,
    bronze_table,
)
from o2o.errors import UsageError
from o2o.frames import local_frame, union_all
from o2o.runs import StageResult

LEDGER = "ops.bronze_files"
# Per-file min/max statistics only on lineage: silver reads bronze by version range, and a person debugging
# a feed filters on the file or the run. Statistics of every landing column (raw payloads included) cost 8%
# of the stage's JVM time (JFR, sample lake, 2026-12-03) and were never used to skip a file.
BRONZE_STATS_COLUMNS = ("_source_file", "_ingested_at", "_run_id")


@dataclass(frozen=True)
class FeedFiles:
    """The ledger keys of the files whose rows bronze.<feed> holds at `version` (None: no table yet)."""

    version: int | None
    files: frozenset[str]


class LandingNotFound(UsageError, FileNotFoundError):
    """The configured landing folder does not exist."""


def list_landing_files(spark: SparkSession, folder: str) -> list[str]:
    """Every data file below `folder` (any Hadoop file system), skipping _hidden and .hidden names.

    Walked with `listStatus`, folder by folder, reading only each entry's path and kind. Hadoop's recursive
    `listFiles` builds a LocatedFileStatus per file with its permissions, which the local file system
    (without Hadoop's native library, as pip's pyspark ships) reads by starting an `ls` process per file:
    6-7 s for the demo's 721 POS files, against 0.7 s this way.
    """
    fs, root = lake.hadoop_path(spark, folder)
    if not fs.exists(root):
        return []
    files, folders = [], [root]
    while folders:
        below = []
        for status in (entry for current in folders for entry in fs.listStatus(current)):
            path = status.getPath()
            if status.isDirectory():
                below.append(path)
            elif not path.getName().startswith(("_", ".")):
                # A Path's string is already canonical: 'file:/x', not %-escaped (a literal '%41' stays).
                files.append(path.toString())
        folders = below
    return sorted(files)


def canonical_uri(uri: str) -> str:
    """A file URI as a Hadoop Path spells it: %-escapes undone, 'file:///x' as 'file:/x'."""
    uri = unquote(uri)
    return "file:/" + uri[len("file:///") :] if uri.startswith("file:///") else uri


def ledger_key(uri: str) -> str:
    """A landing file as the ledger knows it: `<feed>/<delivery date>/<file>`, without the landing root.

    The same file under a moved landing root (a remount, s3:// read as s3a://) is the same delivery;
    compared by full URI it would look new and be ingested a second time. `uri` is as a Path spells it.
    """
    return "/".join(uri.rstrip("/").split("/")[-3:])


def read_ledger(spark: SparkSession, cfg: Config) -> dict[str, FeedFiles]:
    """feed -> its files as ops.bronze_files last recorded them; {} before the first run.

    One row per ingested landing file, so bounded like the landing listing itself.
    """
    if lake.version(spark, cfg, LEDGER) is None:
        return {}
    files: dict[str, set[str]] = defaultdict(set)
    versions: dict[str, int] = {}
    for row in lake.read(spark, cfg, LEDGER).collect():
        files[row["feed"]].add(row["file"])
        versions[row["feed"]] = row["bronze_version"]
    return {feed: FeedFiles(versions[feed], frozenset(keys)) for feed, keys in files.items()}


def ingested_files(
    spark: SparkSession, cfg: Config, feed: str, recorded: FeedFiles | None = None
) -> FeedFiles:
    """The files already in bronze.<feed>: the ledger's when it was recorded at the table's current version.

    Otherwise they are read from the table itself (one distinct scan of `_source_file`): the table is the
    truth, and a ledger recorded at another version may miss a commit or name files a RESTORE took away.
    """
    current = lake.version(spark, cfg, bronze_table(feed))
    if current is None:
        return FeedFiles(None, frozenset())
    if recorded is not None and recorded.version == current:
        return recorded
    # One row per ingested file: bounded by the landing files, like the listing.
    rows = (
        lake.read(spark, cfg, bronze_table(feed), version=current).select("_source_file").distinct().collect()
    )
    return FeedFiles(current, frozenset(ledger_key(canonical_uri(row[0])) for row in rows))


def write_ledger(spark: SparkSession, cfg: Config, feeds: dict[str, FeedFiles], run_id: str) -> None:
    """Replace ops.bronze_files with `feeds` in one commit: a row per file (a feed without files has none)."""
    rows = [
        (feed, file, state.version, run_id)
        for feed, state in sorted(feeds.items())
        for file in sorted(state.files)
    ]
    lake.overwrite(local_frame(spark, rows, OPS["bronze_files"]), cfg, LEDGER)


def read_json_feed(spark: SparkSession, feed: str, files: list[str]) -> DataFrame:
    """JSON-lines files as landing columns + `_raw` (the line) + `_corrupt_record` (lines that do not parse)."""
    schema = StructType(LANDING[feed].fields + [StructField(CORRUPT, StringType(), True)])
    parsed = F.from_json("value", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})
    return (
        spark.read.text(files)
        .where(F.trim("value") != "")
        .select(
            parsed.alias("record"),
            F.col("value").alias("_raw"),
            F.col("_metadata.file_path").alias("_source_file"),
        )
        .select(
            *[F.col(f"record.{f.name}").alias(f.name) for f in LANDING[feed].fields],
            "_raw",
            F.lit(None).cast("string").alias("_extra"),
            F.col(f"record.{CORRUPT}").alias(CORRUPT),
            "_source_file",
        )
    )


def read_csv_header(spark: SparkSession, file: str) -> list[str]:
    """Column names from the first line of one CSV file (reads one line, through Hadoop)."""
    jvm = spark.sparkContext._jvm
    fs, path = lake.hadoop_path(spark, file)
    stream = fs.open(path)
    try:
        line = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8")).readLine() or ""
    finally:
        stream.close()
    return [name.strip().strip('"').lstrip("\ufeff") for name in line.split(",")]


def read_csv_feed(spark: SparkSession, feed: str, files: list[str]) -> DataFrame:
    """CSV files mapped by their own header: contract columns typed, unknown columns kept as JSON in `_extra`.

    Files are grouped by header so a column added (or reordered) by the source from some day on is
    neither lost nor mistaken for a malformed row; a row that does not fit its header goes to `_corrupt_record`.
    """
    contract = {f.name: f.dataType for f in LANDING[feed].fields}
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for file in files:
        groups[tuple(read_csv_header(spark, file))].append(file)

    frames = []
    for header, group_files in sorted(groups.items()):
        file_schema = StructType(
            [StructField(name, contract.get(name, StringType()), True) for name in header]
            + [StructField(CORRUPT, StringType(), True)]
        )
        extras = [name for name in header if name not in contract]
        frame = spark.read.csv(
            group_files,
            schema=file_schema,
            header=True,
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT,
            encoding="UTF-8",
        ).select(
            *[
                (F.col(f"`{name}`") if name in header else F.lit(None).cast(dtype)).alias(name)
                for name, dtype in contract.items()
            ],
            F.col(CORRUPT).alias("_raw"),
            _extra_json(extras),
            F.col(CORRUPT),
            F.col("_metadata.file_path").alias("_source_file"),
        )
        frames.append(frame)
    return union_all(frames)


def _extra_json(extras: list[str]) -> Column:
    if not extras:
        return F.lit(None).cast("string").alias("_extra")
    return F.to_json(F.struct(*[F.col(f"`{name}`") for name in extras])).alias("_extra")


def with_lineage(records: DataFrame, feed: str, run_id: str) -> DataFrame:
    """Landing records with ingest time, run id and channel, in the bronze column order."""
    channel = F.lit(FEED_CHANNEL[feed]) if FEED_CHANNEL[feed] else F.col("channel")
    return records.withColumns(
        {"_ingested_at": F.current_timestamp(), "_run_id": F.lit(run_id), "_channel": channel}
    ).select(*[f.name for f in bronze_schema(feed).fields])


def ingest_feed(
    spark: SparkSession,
    cfg: Config,
    feed: str,
    run_id: str,
    as_of: date,
    accept: tuple[str, ...] = (),
    recorded: FeedFiles | None = None,
) -> tuple[dict, FeedFiles]:
    """Append the feed's not-yet-ingested landing files to bronze.<feed> in one commit.

    Returns the counts for the run log and the feed's files after the run (for the ledger). `recorded` is
    what the ledger holds for the feed.
    """
    table = bronze_table(feed)
    landing = f"{cfg.resolve(cfg.lake.landing).rstrip('/')}/{feed}"
    done = ingested_files(spark, cfg, feed, recorded)
    if done.version is None:
        lake.ensure_table(
            spark, cfg, table, bronze_schema(feed), change_feed=True, stats_columns=BRONZE_STATS_COLUMNS
        )
    new_files = [file for file in list_landing_files(spark, landing) if ledger_key(file) not in done.files]
    if not new_files:
        return {"files": 0, "rows": 0, "malformed": 0}, done
    reader = read_json_feed if LANDING_FORMAT[feed] == "json" else read_csv_feed
    # Cached once: counted, validated and written from the same parse of the new files only. The counts
    # come first: their one job parses the files into the cache, so the gate and the write read memory.
    records = with_lineage(reader(spark, feed, new_files), feed, run_id).cache()
    try:
        rows, malformed, sources = records.agg(
            F.count(F.lit(1)), F.count(CORRUPT), F.collect_set("_source_file")
        ).first()
        if rows == 0:
            # Header-only or empty exports (a day without CRM changes, a store without sales): nothing to
            # check or append, and no commit. Holding no row, they stay out of the ledger and are listed
            # again by the next run, where they again add nothing.
            return {"files": len(new_files), "rows": 0, "malformed": 0}, done
        quality.gate(spark, cfg, table, records, run_id=run_id, stage="bronze", as_of=as_of, accept=accept)
        planned_on = lake.version(spark, cfg, table)
        landed = lake.append_once(
            records, cfg, table, app_id=f"o2o-bronze-{feed}", txn_version=planned_on + 1
        )
    finally:
        records.unpersist()
    counts = {"files": len(new_files), "rows": rows, "malformed": malformed}
    if not landed:
        # Another run landed this batch first: what the table holds now is read again by the next run.
        return counts, done
    added = {ledger_key(canonical_uri(source)) for source in sources}
    return counts, FeedFiles(planned_on + 1, done.files | added)


# Feeds are independent tables: a few are ingested at once so that one feed's driver-side work (listing,
# Delta commit, quality gate) overlaps another's Spark jobs. Each feed still lands in one commit.
PARALLEL_FEEDS = 3


def run(
    spark: SparkSession,
    cfg: Config,
    as_of: date,
    run_id: str,
    accept: tuple[str, ...] = (),
    feeds: tuple[str, ...] = FEEDS,
) -> StageResult:
    """landing/<feed>/** -> bronze.<feed> for every feed; files already ingested are never read again."""
    landing = cfg.resolve(cfg.lake.landing)
    fs, landing_path = lake.hadoop_path(spark, landing)
    if not fs.exists(landing_path):
        # An empty folder is a quiet day; a missing one is a wrong path, which would otherwise "succeed".
        raise LandingNotFound(
            f"landing folder {landing} does not exist: check lake.landing in conf/{cfg.env}.yaml "
            "(or O2O__LAKE__LANDING)"
        )
    result = StageResult(stage="bronze")
    for feed in feeds:
        result.input_versions[bronze_table(feed)] = lake.version(spark, cfg, bronze_table(feed))
    recorded = read_ledger(spark, cfg)
    # Results batched here too (one ops.dq_results commit), so threads never race to create that table.
    with (
        quality.batched_results(spark, cfg),
        ThreadPoolExecutor(max_workers=PARALLEL_FEEDS, thread_name_prefix="o2o-bronze") as pool,
    ):
        futures = {
            feed: pool.submit(ingest_feed, spark, cfg, feed, run_id, as_of, accept, recorded.get(feed))
            for feed in feeds
        }
    # Leaving the pool waited for every feed; a failed feed does not stop the others from landing.
    failures = []
    ledger = dict(recorded)  # a failed feed keeps its old entry: a stale one is read again from its table
    for feed, future in futures.items():
        table = bronze_table(feed)
        result.output_versions[table] = lake.version(spark, cfg, table)
        if future.exception() is not None:
            failures.append(future.exception())
            print(f"  bronze {feed:<26} FAILED: {failures[-1]}")
            continue
        counts, ledger[feed] = future.result()
        print(
            f"  bronze {feed:<26} files {counts['files']:>5}  rows {counts['rows']:>9,}  malformed {counts['malformed']:>5}"
        )
        result.details[feed] = counts
        if counts["rows"]:
            # The next run's volume check compares each table with its own rows here, not the stage's total.
            result.details.setdefault("rows_out_by_table", {})[table] = counts["rows"]
        result.rows_in += counts["rows"]
        result.rows_out += counts["rows"]
    # After the bronze commits: a run killed before this line leaves the ledger behind its tables, and
    # the next run reads those tables' files from the tables themselves.
    # A feed without files has no row to record (its empty table is read again, at no cost to speak of).
    ledger = {feed: state for feed, state in ledger.items() if state.files}
    if ledger != recorded:
        write_ledger(spark, cfg, ledger, run_id)
    result.output_versions[LEDGER] = lake.version(spark, cfg, LEDGER)
    if failures:
        raise failures[0]
    return result
