"""The session maker: clear errors without Java, adoption of an active session with Delta."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from o2o.spark import EnvironmentProblem, ensure_java, get_spark, local_threads, task_slots


def test_missing_java_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java-here"))

    with pytest.raises(EnvironmentProblem, match=r"Java not found.*Java 17.*openjdk-17"):
        ensure_java()


def test_old_java_is_refused(monkeypatch, tmp_path):
    fake_home = tmp_path / "jdk11"
    (fake_home / "bin").mkdir(parents=True)
    fake_java = fake_home / "bin" / "java"
    fake_java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.21\" 2023-10-17' >&2\n")
    fake_java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(fake_home))

    with pytest.raises(EnvironmentProblem, match=r"Java 11 found.*needs Java 17"):
        ensure_java()


def test_cli_without_java_exits_with_a_clear_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_SUBMIT_ARGS")}
    env["PATH"] = str(tmp_path)  # no java on it
    env["O2O__LAKE__ROOT"] = str(tmp_path / "lake")

    completed = subprocess.run(
        [sys.executable, "-m", "o2o.cli", "run", "bronze", "--as-of", "2026-06-01"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert completed.returncode == 2
    assert "Java not found" in completed.stderr
    assert "Java 17" in completed.stderr


def test_get_spark_adopts_the_active_session(spark, base_cfg):
    assert get_spark(base_cfg) is spark
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_a_local_session_runs_the_throughput_garbage_collector(spark):
    beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    # ParallelGC's collectors; G1 (the JVM default) would name "G1 Young Generation" and "G1 Old Generation".
    assert sorted(bean.getName() for bean in beans) == ["PS MarkSweep", "PS Scavenge"]


def test_many_input_files_are_listed_in_one_task_per_core_not_one_per_file(spark, tmp_path):
    paths = []
    for i in range(40):  # over 32 paths Spark lists them in a job (bronze reads a file per store and day)
        path = tmp_path / f"part-{i}.txt"
        path.write_text("x\n")
        paths.append(str(path))
    context = spark.sparkContext
    tracker = context.statusTracker()
    context.setJobGroup("o2o-listing-test", "list 40 input files")
    try:
        frame = spark.read.text(paths)  # lists the files now; nothing is read yet
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)

    (listing_job,) = tracker.getJobIdsForGroup("o2o-listing-test")
    tasks = [tracker.getStageInfo(stage).numTasks for stage in tracker.getJobInfo(listing_job).stageIds]
    # Spark's default lists each path in a task of its own: 40 here, 721 for the demo's POS files.
    assert tasks == [context.defaultParallelism]
    assert frame.count() == 40


@pytest.mark.parametrize(
    ("master", "threads"),
    [
        ("local", 1),
        ("local[3]", 3),
        ("local[2,4]", 2),
        ("local[*]", os.cpu_count()),
        ("spark://host:7077", None),
        ("yarn", None),
    ],
)
def test_local_threads_reads_the_master_url(master, threads):
    assert local_threads(master) == threads


def test_a_local_session_runs_as_many_tasks_as_its_threads(spark):
    assert spark.sparkContext.master == "local[2]"
    assert task_slots(spark) == 2
