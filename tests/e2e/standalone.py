"""A real Spark standalone cluster on loopback (a master and two workers) and the `make dist` folder jobs run from."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyspark

from o2o.config import load_config
from o2o.spark import DELTA_CATALOG, DELTA_EXTENSION, cached_delta_jars
from processes import NO_CODEGEN_SPARK_CONF, SHORT_LIVED_JVM_ENV

PROJECT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).resolve().parent

# What this test cluster's admin would put in spark-defaults.conf for its tiny tables and one-core workers
# (measured on 200 generated customers: bronze 112 -> 84 s, silver 247 -> 163 s). Delta reads a table's
# log in 50 tasks by default; on two one-core executors every such job costs seconds. A waiting task
# gains nothing from locality here (every executor is on the same host), and nobody opens the UI.
TEST_CLUSTER_DEFAULTS = {
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.locality.wait": "0s",
    "spark.ui.enabled": "false",
    **NO_CODEGEN_SPARK_CONF,  # 18 short-lived JVMs (drivers and executors) would each compile the same code
}

# The test cluster's log4j2.properties: warnings and errors only, as a shared cluster's admin would set it,
# except the daemons' own lines (applications registered and removed, executors launched). At Spark's INFO
# default every job and task writes lines (2026-12-04: 2,711 from the README's bronze application's driver,
# 3,669 from one executor of the DAG's silver), and the DAG's SparkSubmitOperator passes each driver line
# through Airflow's task logging.
TEST_CLUSTER_LOG4J = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.deploy.name = org.apache.spark.deploy
logger.deploy.level = info
"""


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def master_state(webui_port: int) -> dict:
    """The standalone master's own JSON status page (workers, running and completed applications)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json/", timeout=10) as response:
        return json.load(response)


def _start_daemon(cls: str, args: list[str], log: Path, env: dict) -> subprocess.Popen:
    """Start a Spark daemon through the installed pyspark's spark-class, in a process group of its own."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), cls, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # executors are the worker's children: one killpg stops them all
        )


def _stop_daemon(process: subprocess.Popen) -> None:
    """Stop a daemon we started (and its children) by its process group id; SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for_workers(webui_port: int, count: int, daemons: list[subprocess.Popen], logs: Path) -> None:
    """Block until the master reports `count` ALIVE workers; raise with the daemon logs otherwise."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if any(d.poll() is not None for d in daemons):
            break
        try:
            alive = [w for w in master_state(webui_port).get("workers", []) if w.get("state") == "ALIVE"]
            if len(alive) >= count:
                return
        except OSError:
            pass
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in logs.glob("*.log"))
    raise RuntimeError(f"the standalone cluster did not come up with {count} workers\n{tails}")


@contextmanager
def standalone_cluster(folder: Path, workers: int = 2) -> Iterator[dict]:
    """A master and `workers` single-core, 1 GiB workers on 127.0.0.1, each with its own work dir; stopped at exit.

    Yields the master URL, its web UI port (for `master_state`), the workers' work dirs (one `app-*`
    folder per application that ran an executor there) and `conf_dir`, the cluster's SPARK_CONF_DIR
    (spark-defaults.conf with TEST_CLUSTER_DEFAULTS) for spark-submit to read.
    """
    logs = folder / "cluster-logs"
    logs.mkdir(parents=True)
    conf_dir = folder / "spark-conf"
    conf_dir.mkdir()
    (conf_dir / "spark-defaults.conf").write_text(
        "".join(f"{key} {value}\n" for key, value in TEST_CLUSTER_DEFAULTS.items())
    )
    (conf_dir / "log4j2.properties").write_text(TEST_CLUSTER_LOG4J)
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(logs),
        "SPARK_WORKER_DIR": str(folder / "work"),
        "SPARK_DAEMON_MEMORY": "256m",
        "SPARK_CONF_DIR": str(conf_dir),  # the daemons and their executors log as the jobs do
        **SHORT_LIVED_JVM_ENV,  # the daemons and the executors they start (one per application)
    }
    port, webui = free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    work_dirs = [folder / f"worker-{n}" for n in range(1, workers + 1)]
    daemons: list[subprocess.Popen] = []
    try:
        daemons.append(
            _start_daemon(
                "org.apache.spark.deploy.master.Master",
                ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(webui)],
                logs / "master.log",
                env,
            )
        )
        for n, work_dir in enumerate(work_dirs, start=1):
            work_dir.mkdir()
            daemons.append(
                _start_daemon(
                    "org.apache.spark.deploy.worker.Worker",
                    [url, "--host", "127.0.0.1", "--webui-port", str(free_port()),
                     "--work-dir", str(work_dir), "--cores", "1", "--memory", "1g"],
                    logs / f"worker-{n}.log",
                    env,
                )
            )  # fmt: skip
        _wait_for_workers(webui, workers, daemons, logs)
        yield {
            "url": url,
            "host": "spark://127.0.0.1",
            "port": port,
            "webui": webui,
            "work_dirs": work_dirs,
            "conf_dir": conf_dir,
        }
    finally:
        for daemon in reversed(daemons):
            _stop_daemon(daemon)


def build_dist(folder: Path) -> Path:
    """Run `make dist` into `folder` and check it holds what a cluster needs: wheel, o2o.zip, jobs/, conf/."""
    completed = subprocess.run(
        ["make", "-s", "dist", f"DIST={folder}"], cwd=PROJECT, capture_output=True, text=True, timeout=900
    )
    assert completed.returncode == 0, f"make dist failed:\n{completed.stdout}\n{completed.stderr}"
    assert (folder / "o2o.zip").is_file() and list(folder.glob("o2o_lakehouse-*.whl"))
    assert (folder / "conf" / "base.yaml").is_file()
    return folder


def offline_delta_jars() -> str:
    """The cached Delta jars as one --jars value (what `make setup` resolved; the --packages equivalent)."""
    jars = cached_delta_jars(load_config("local"))
    if not jars:
        raise RuntimeError("Delta jars not cached in .cache/spark-jars; run `make setup` first")
    return ",".join(jars)


def spark_submit(master: str, dist: Path, job: str, args: list[str], env: dict, log: Path) -> int:
    """The README's standalone `spark-submit` of one job file from dist/; returns its exit code, output in `log`."""
    command = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--master", master,
        "--name", f"o2o-{job}",
        "--jars", offline_delta_jars(),
        "--py-files", str(dist / "o2o.zip"),
        "--conf", f"spark.sql.extensions={DELTA_EXTENSION}",
        "--conf", f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
        str(dist / "jobs" / f"{job}.py"),
        "--conf-dir", str(dist / "conf"),
        *args,
    ]  # fmt: skip
    with log.open("w") as out:
        return subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=1800).returncode
