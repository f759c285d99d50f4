"""Run an `o2o` command in another process and SIGKILL it mid-way: what the kill-safety tests share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# The environment of a JVM a test starts for one short job (an `o2o` command, a notebook's kernel, spark-submit
# on the test cluster): C1 compilation only. Such a JVM ends before C2's compiled code pays back the cores C2
# spends compiling, on a machine whose two cores the suite keeps busy. Measured from a clean clone
# (2026-12-01): the notebooks 108/64/67 s -> 76/37/52 s, the bronze kill test 95 -> 80 s. The suite's own
# sessions live for the whole run and keep both compilers: with C1 they were slower (the gold stage test
# 176 -> 259 s, the identity tests about 40% slower).
SHORT_LIVED_JVM_ENV = {"JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1"}

# Spark settings for the tests' tiny tables: no generated Java. Spark compiles code for every new plan (whole
# stage) and expression (projections, predicates, orderings); on a few thousand rows compiling costs more
# than the compiled code saves, in every JVM that runs the query again (a cluster's driver and each of its
# executors). `factoryMode` is Spark's own switch for its tests; production keeps code generation on.
# Measured (2026-12-04, 2 cores): the sample lake's stages in a fresh JVM, 160-190 s -> 130-150 s (silver
# 53-61 -> 43-46 s, gold 19 -> 14 s); the standalone-cluster test alone 392 -> 348 s; `make test` with that
# test in it, 17 min 22 s -> 13 min 38 s.
NO_CODEGEN_SPARK_CONF = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}


def kill_o2o_when(args: list[str], env: dict[str, str], marker: Path, timeout_s: float = 600) -> None:
    """Start `python -m o2o.cli <args>`, SIGKILL its whole process group as soon as `marker` exists.

    Fails when the command ends (or the timeout passes) before the marker appears: the kill must land mid-run.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "o2o.cli", *args],
        env={**os.environ, **SHORT_LIVED_JVM_ENV, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the JVM is a child: kill the whole group
    )
    deadline = time.time() + timeout_s
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, f"`o2o {' '.join(args)}` ended before it could be killed mid-way"
    assert marker.exists(), f"{marker} did not appear within {timeout_s} s"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def delta_commit(table_path: str, version: int) -> Path:
    """The commit file of `version` in a Delta table's log (it exists once that version is committed)."""
    return Path(table_path) / "_delta_log" / f"{version:020d}.json"
