"""The one place a SparkSession is made (local) or adopted (spark-submit, notebook, Airflow task)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from pyspark.sql import SparkSession

from o2o.config import Config
from o2o.errors import UsageError

MIN_JAVA = 17
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


class EnvironmentProblem(UsageError, RuntimeError):
    """The machine or session cannot run the pipeline; the message says what to install or set."""


def java_major_version() -> int:
    """Major version of the `java` Spark will start ($JAVA_HOME/bin/java, else the one on PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    install_hint = (
        "Install a Java 17 runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; "
        "macOS: brew install openjdk@17) and put it on PATH or set JAVA_HOME."
    )
    if not java or not Path(java).exists():
        where = f"JAVA_HOME={java_home}" if java_home else "PATH"
        raise EnvironmentProblem(
            f"Java not found ({where}). o2o-lakehouse runs Spark, which needs Java {MIN_JAVA}. {install_hint}"
        )
    try:
        output = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except OSError as exc:
        raise EnvironmentProblem(f"Could not run {java}: {exc}. {install_hint}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not match:
        raise EnvironmentProblem(
            f"Could not read the Java version from `{java} -version`: {output.strip()!r}. {install_hint}"
        )
    major = int(match.group(1))
    if major == 1:  # "1.8.0_392" style
        major = int(match.group(2) or 0)
    return major


def ensure_java() -> int:
    """Fail at once, with what to install, if Java is missing or older than 17."""
    major = java_major_version()
    if major < MIN_JAVA:
        raise EnvironmentProblem(
            f"Java {major} found, but Spark 4 needs Java {MIN_JAVA} or newer. "
            "Install openjdk-17 and put it on PATH or set JAVA_HOME."
        )
    return major


def delta_maven_coordinate() -> str:
    """The Delta jar matching the installed pyspark and delta-spark (the same rule as delta's pip helper)."""
    spark_minor = ".".join(version("pyspark").split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta-spark')}"


def cached_delta_jars(cfg: Config) -> list[str]:
    """Jars resolved into the project's cache by an earlier run; empty when not resolved yet."""
    jar_dir = Path(cfg.resolve(cfg.spark.jar_cache)) / "jars"
    group, artifact, ver = delta_maven_coordinate().split(":")
    if not (jar_dir / f"{group}_{artifact}-{ver}.jar").exists():
        return []
    return sorted(str(p) for p in jar_dir.glob("*.jar"))


# Tasks of the job that lists many input paths (bronze reads each POS file by name) and of VACUUM's listing.
# Spark's default, 10,000, is one task per path: 6-13 s to open the demo's 721 POS files on 2 cores, against
# 0.6-0.7 s with one task per core.
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"

# Compiled query code kept for reuse (Spark's default keeps 100). A stage runs several hundred small queries
# whose generated Java would otherwise be compiled again on every run in the same session (a notebook, the
# demo's later stages, the test suite): one silver run on the sample lake compiles about 900 classes.
# Measured on its second run in one session (2026-12-02): code generation 18.7 s -> 1.4 s, the run
# 106-110 s -> 86-89 s. The classes live in Metaspace: 200 -> 206 MiB after two runs.
CODEGEN_CACHE_ENTRIES = 10_000

# A local session is a batch job in one JVM on a few cores: the throughput collector spends less of them than
# G1 (Java's default), whose write barriers and concurrent threads pay for short pauses a batch job does not
# need. Silver on the sample lake (2026-12-03, alternating runs): 150 and 155 s against 185 and 172 s.
LOCAL_GC = "-XX:+UseParallelGC"


def get_spark(cfg: Config) -> SparkSession:
    """Adopt the active session if there is one (checking Delta is usable), else build a local one with Delta."""
    active = SparkSession.getActiveSession()
    if active is not None:
        check_delta(active)
        return active
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit: its JVM already holds --master, --jars/--packages and --conf; a builder
        # master or jar list here would silently turn a cluster job into a local one.
        submitted = SparkSession.builder.getOrCreate()
        if cfg.spark.shuffle_partitions:
            submitted.conf.set("spark.sql.shuffle.partitions", str(cfg.spark.shuffle_partitions))
        if submitted.conf.get(LISTING_PARALLELISM, None) is None:
            submitted.conf.set(LISTING_PARALLELISM, str(submitted.sparkContext.defaultParallelism))
        check_delta(submitted)
        return submitted
    ensure_java()
    cores = os.cpu_count() or 2
    shuffle_partitions = cfg.spark.shuffle_partitions or 2 * cores
    builder = (
        SparkSession.builder.master(cfg.spark.master)
        .appName(cfg.spark.app_name)
        .config("spark.sql.extensions", DELTA_EXTENSION)
        .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", str(shuffle_partitions))
        .config(LISTING_PARALLELISM, str(shuffle_partitions))
        .config("spark.ui.enabled", str(cfg.spark.ui_enabled).lower())
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", cfg.spark.driver_memory)
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.warehouse.dir", cfg.resolve(".cache/spark-warehouse"))
        .config(
            "spark.driver.extraJavaOptions", f"{LOCAL_GC} -Dderby.system.home={cfg.resolve('.cache/derby')}"
        )
        .config("spark.databricks.delta.snapshotPartitions", str(max(2, cores)))
        .config("spark.sql.codegen.cache.maxEntries", str(CODEGEN_CACHE_ENTRIES))
    )
    jars = cached_delta_jars(cfg)
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    else:
        # First run: Spark resolves Delta from Maven Central into the project's cache (then offline).
        cache = Path(cfg.resolve(cfg.spark.jar_cache))
        cache.mkdir(parents=True, exist_ok=True)
        builder = (
            builder.config("spark.jars.packages", delta_maven_coordinate())
            .config("spark.jars.ivy", str(cache))
            .config("spark.jars.ivySettings", str(Path(cfg.project_root) / "conf" / "ivysettings.xml"))
        )
    for key, value in cfg.spark.extra.items():
        builder = builder.config(key, str(value))
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        raise EnvironmentProblem(
            f"Spark did not start: {exc}. If the Delta jars could not be resolved, check that Maven Central "
            f"is reachable, or run `mvn dependency:get -Dartifact={delta_maven_coordinate()}` to fill ~/.m2."
        ) from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def local_threads(master: str) -> int | None:
    """Task threads of a local master URL ("local" 1, "local[4]" 4, "local[*]" the cores); None for a cluster."""
    local = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\s*\d+)?\])?", master)
    if local is None:
        return None
    threads = local.group(1)
    if threads is None:
        return 1
    return (os.cpu_count() or 1) if threads == "*" else int(threads)


def task_slots(spark: SparkSession) -> int:
    """How many tasks the session runs at once: a local master's threads, else Spark's default parallelism.

    A local session's default parallelism is its shuffle partitions (two per core), more than it runs at once.
    """
    return local_threads(spark.sparkContext.master) or spark.sparkContext.defaultParallelism


def check_delta(spark: SparkSession) -> None:
    """Raise a clear error when an adopted session cannot read and write Delta tables."""
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    if DELTA_EXTENSION not in extensions:
        raise EnvironmentProblem(
            "The active Spark session has no Delta extension. Start it with "
            f"--packages {delta_maven_coordinate()} --conf spark.sql.extensions={DELTA_EXTENSION} "
            f"--conf spark.sql.catalog.spark_catalog={DELTA_CATALOG}"
        )
    if spark.conf.get("spark.sql.session.timeZone") != "UTC":
        # Timestamps are stored and compared in UTC; an adopted session is aligned, not rejected.
        spark.conf.set("spark.sql.session.timeZone", "UTC")
