"""spark-submit on a real standalone cluster: a master and two workers on loopback run bronze..train from dist/."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyspark
import pyspark.sql.functions as F
import pytest
from e2e_lakes import lake_env, lake_settings

from o2o import lake
from o2o.contracts import FEEDS
from o2o.spark import DELTA_CATALOG, DELTA_EXTENSION

PROJECT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).resolve().parent
JARS = PROJECT / ".cache" / "spark-jars" / "jars"
JOBS = ("bronze_ingest", "silver_conform", "gold_rfm", "reco_train")
CUSTOMERS, DAYS, SEED = 200, 10, 11
AS_OF = "2026-06-10"  # generator.start_date 2026-06-01 + DAYS - 1
# Small evaluation windows so ten days of sample data are enough to train on.
SMALL_RECO = {"O2O__RECO__TEST_DAYS": "2", "O2O__RECO__VALIDATION_DAYS": "2"}

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def master_state(webui_port: int) -> dict:
    """The standalone master's own JSON status page (workers, running and completed applications)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json/", timeout=10) as response:
        return json.load(response)


def start_daemon(cls: str, args: list[str], log: Path, env: dict) -> subprocess.Popen:
    """Start a Spark daemon through the installed pyspark's spark-class, in a process group of its own."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), cls, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # executors are the worker's children: one killpg stops them all
        )


def stop_daemon(process: subprocess.Popen) -> None:
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


def wait_for_workers(webui_port: int, count: int, daemons: list[subprocess.Popen], logs: Path) -> None:
    """Block until the master reports `count` ALIVE workers; fail with the daemon logs otherwise."""
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
    pytest.fail(f"the standalone cluster did not come up with {count} workers\n{tails}")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """What `make dist` builds (here into a folder of this test): the wheel, o2o.zip, jobs/ and conf/."""
    folder = tmp_path_factory.mktemp("dist")
    completed = subprocess.run(
        ["make", "-s", "dist", f"DIST={folder}"], cwd=PROJECT, capture_output=True, text=True, timeout=900
    )
    assert completed.returncode == 0, f"make dist failed:\n{completed.stdout}\n{completed.stderr}"
    assert (folder / "o2o.zip").is_file() and list(folder.glob("o2o_lakehouse-*.whl"))
    assert {p.stem for p in (folder / "jobs").glob("*.py")} >= set(JOBS)
    assert (folder / "conf" / "base.yaml").is_file()
    return folder


@pytest.fixture()
def cluster(tmp_path):
    """A standalone master and two single-core workers on 127.0.0.1, each worker with its own work dir."""
    logs = tmp_path / "cluster-logs"
    logs.mkdir()
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(logs),
        "SPARK_WORKER_DIR": str(tmp_path / "work"),
        "SPARK_DAEMON_MEMORY": "256m",
    }
    port, webui = free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    daemons: list[subprocess.Popen] = []
    try:
        daemons.append(
            start_daemon(
                "org.apache.spark.deploy.master.Master",
                ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(webui)],
                logs / "master.log",
                env,
            )
        )
        for n in (1, 2):
            work_dir = tmp_path / f"worker-{n}"
            work_dir.mkdir()
            daemons.append(
                start_daemon(
                    "org.apache.spark.deploy.worker.Worker",
                    [
                        url,
                        "--host",
                        "127.0.0.1",
                        "--webui-port",
                        str(free_port()),
                        "--work-dir",
                        str(work_dir),
                        "--cores",
                        "1",
                        "--memory",
                        "1g",
                    ],
                    logs / f"worker-{n}.log",
                    env,
                )
            )
        wait_for_workers(webui, 2, daemons, logs)
        yield {"url": url, "webui": webui, "work_dirs": [tmp_path / "worker-1", tmp_path / "worker-2"]}
    finally:
        for daemon in reversed(daemons):
            stop_daemon(daemon)


def spark_submit(master: str, dist: Path, job: str, env: dict, log: Path) -> subprocess.CompletedProcess:
    """`spark-submit` of one job file from dist/, Delta from the offline jar cache (the --packages equivalent)."""
    jars = ",".join(str(p) for p in sorted(JARS.glob("*.jar")))
    command = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--master", master,
        "--name", f"o2o-{job}",
        "--jars", jars,
        "--py-files", str(dist / "o2o.zip"),
        "--conf", f"spark.sql.extensions={DELTA_EXTENSION}",
        "--conf", f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
        "--conf", "spark.sql.shuffle.partitions=2",
        "--conf", "spark.default.parallelism=2",
        "--conf", "spark.ui.enabled=false",
        "--executor-memory", "512m",
        "--driver-memory", "768m",
        "--total-executor-cores", "2",
        str(dist / "jobs" / f"{job}.py"),
        "--env", "cluster",
        "--conf-dir", str(dist / "conf"),
        "--as-of", AS_OF,
    ]  # fmt: skip
    with log.open("w") as out:
        return subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=1800)


def test_stages_run_on_a_standalone_cluster(spark, base_cfg, dist, cluster, tmp_path):
    if not list(JARS.glob("io.delta_delta-spark_*.jar")):
        pytest.fail(f"Delta jars not cached in {JARS}; run `make setup` first")
    settings = lake_settings(tmp_path)
    landing = settings["landing"]
    env = {
        **os.environ,
        **lake_env(settings),
        **SMALL_RECO,
        "O2O_PII_SALT": "e2e-cluster-test-salt",
        "O2O__SPARK__SHUFFLE_PARTITIONS": "2",
        "SPARK_HOME": str(SPARK_HOME),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    generated = subprocess.run(
        [sys.executable, "-m", "o2o.cli", "generate", "--customers", str(CUSTOMERS), "--days", str(DAYS),
         "--seed", str(SEED), "--landing", str(landing)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr

    for job in JOBS:
        log = tmp_path / f"{job}.log"
        completed = spark_submit(cluster["url"], dist, job, env, log)
        assert completed.returncode == 0, (
            f"spark-submit {job} exited {completed.returncode}:\n" + (log.read_text(errors="replace")[-6000:])
        )

    # Every job ran on the cluster (not in a local master inside the driver), with an executor on each worker.
    finished = {app["name"]: app for app in master_state(cluster["webui"])["completedapps"]}
    assert set(finished) == {f"o2o-{job}" for job in JOBS}, sorted(finished)
    assert {finished[f"o2o-{job}"]["state"] for job in JOBS} == {"FINISHED"}
    for work_dir in cluster["work_dirs"]:
        assert len([d for d in work_dir.glob("app-*") if d.is_dir()]) == len(JOBS), sorted(work_dir.iterdir())

    cfg = base_cfg.replace(lake=settings)
    bronze_rows = {feed: lake.read(spark, cfg, f"bronze.{feed}").count() for feed in FEEDS}
    assert all(rows > 0 for rows in bronze_rows.values()), bronze_rows
    orders = lake.read(spark, cfg, "silver.orders").count()
    assert 0 < orders <= bronze_rows["online_orders"] + bronze_rows["pos_sales"]
    assert lake.read(spark, cfg, "silver.order_lines").count() > 0
    customers = lake.read(spark, cfg, "silver.customers").count()
    assert customers > 0

    rfm = lake.read(spark, cfg, "gold.customer_rfm").where(F.col("as_of") == F.lit(AS_OF).cast("date"))
    rfm_rows = rfm.count()
    assert 0 < rfm_rows <= customers
    assert rfm.select("customer_key").distinct().count() == rfm_rows
    assert lake.read(spark, cfg, "gold.model_metrics").count() > 0
    assert lake.read(spark, cfg, "ops.models").count() == 1

    runs = lake.read(spark, cfg, "ops.pipeline_runs").select("stage", "status").collect()  # one row per job
    assert sorted(r["stage"] for r in runs) == sorted(["bronze", "silver", "gold", "train"])
    assert {r["status"] for r in runs} == {"succeeded"}, runs
