"""The Airflow 3 DAG with real Airflow: it imports cleanly, its tasks are in stage order, and dag.test() runs it on a
real standalone cluster after the README's spark-submit, from what `make dist` builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from e2e_lakes import lake_env, lake_settings
from standalone import SPARK_HOME, build_dist, master_state, spark_submit, standalone_cluster

from o2o import lake
from o2o.contracts import FEEDS
from processes import SHORT_LIVED_JVM_ENV

PROJECT = Path(__file__).resolve().parents[2]
DAG_ID = "o2o_daily"
STAGES = ["bronze", "silver", "gold", "train", "recommend"]
CUSTOMERS, DAYS, SEED = 200, 10, 13
AS_OF = date(2026, 6, 10)  # generator.start_date 2026-06-01 + DAYS - 1

# One xdist worker runs this module: one Airflow home and metadata DB, migrated once.
pytestmark = pytest.mark.xdist_group("airflow")


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """A throw-away AIRFLOW_HOME with a migrated sqlite metadata DB (dag.test() writes runs into it)."""
    home = tmp_path_factory.mktemp("airflow-home")
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    migrated = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def dagbag(airflow_home):
    # Imported only now: Airflow reads AIRFLOW_HOME and its config once, when it is first imported.
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError as exc:
        pytest.fail(f"Airflow is not installed ({exc}); install the extra: pip install -e '.[dev,airflow]'")

    return DagBag(dag_folder=str(PROJECT / "dags"))


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_tasks_run_in_stage_order_with_retries_and_one_run_at_a_time(dagbag):
    dag = dagbag.dags[DAG_ID]

    assert sorted(dag.task_ids) == sorted(STAGES)
    for upstream, downstream in zip(STAGES, STAGES[1:], strict=False):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    assert dag.get_task("bronze").upstream_task_ids == set()
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert "env" in dag.params
    for task in dag.tasks:
        assert task.retries >= 1 and task.retry_exponential_backoff
        assert task.application.endswith(".py") and Path(task.application).is_file()
        assert task.application_args[:4] == ["--env", "{{ params.env }}", "--as-of", "{{ ds }}"]
        assert task.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


@pytest.mark.slow
def test_a_failing_stage_fails_its_task_and_nothing_downstream_runs(airflow_home, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("O2O__LAKE__ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_O2O", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    for key, value in SHORT_LIVED_JVM_ENV.items():
        monkeypatch.setenv(key, value)  # for the job's JVM
    dag = DagBag(dag_folder=str(PROJECT / "dags")).dags[DAG_ID]  # a copy of its own: retries off below
    for task in dag.tasks:
        task.retries = 0

    # An environment with no conf/<env>.yaml: the bronze job exits 2 inside spark-submit.
    run = dag.test(logical_date=datetime(2026, 6, 2, tzinfo=timezone.utc), run_conf={"env": "no_such_env"})

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["bronze"] == "failed"
    assert all(states[stage] == "upstream_failed" for stage in STAGES[1:]), states
    assert run.state == "failed"
    assert not (tmp_path / "lake").exists()


@pytest.mark.slow  # about 6 minutes alone on 2 cores (2026-12-04: 348 s), 8 beside the other tests (499 s)
def test_spark_submit_and_the_dag_run_every_stage_on_a_standalone_cluster_from_dist(
    airflow_home, spark, base_cfg, tmp_path, monkeypatch
):
    """The README's spark-submit of bronze, then dag.test() for the same date, on one real standalone cluster.

    Jobs, conf and the package come from a `make dist` folder (O2O_HOME), as on a cluster; the DAG's
    Spark connection points at the master. The DAG's bronze task re-runs a date bronze already did by
    hand, so it must find nothing new and change no table (reruns of a date are safe).
    """
    from airflow.dag_processing.dagbag import DagBag

    dist = build_dist(tmp_path / "dist")
    settings = lake_settings(tmp_path)
    cfg = base_cfg.replace(lake=settings)
    with standalone_cluster(tmp_path / "cluster") as cluster:
        job_env = {
            **lake_env(settings),
            # Ten days of sample data are enough to train on with two-day evaluation windows.
            "O2O__RECO__TEST_DAYS": "2",
            "O2O__RECO__VALIDATION_DAYS": "2",
            # One small parameter combination: this test is about where the jobs run, not model quality.
            "O2O__RECO__GRID": "{rank: [8], regParam: [1.0], alpha: [2.0], maxIter: [5]}",
            "O2O__SPARK__SHUFFLE_PARTITIONS": "2",
            "O2O_PII_SALT": "e2e-cluster-test-salt",  # conf/cluster.yaml has no dev default
            "O2O_HOME": str(dist),  # read when the DAG is parsed: jobs/, conf/ and o2o.zip from dist/
            "SPARK_HOME": str(SPARK_HOME),
            "SPARK_CONF_DIR": str(cluster["conf_dir"]),  # the cluster's spark-defaults.conf
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            **SHORT_LIVED_JVM_ENV,  # each job's driver JVM
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # spark-submit
            # The task's Spark connection, given the way deployments give it (env var): the cluster's master.
            "AIRFLOW_CONN_SPARK_O2O": json.dumps(
                {"conn_type": "spark", "host": cluster["host"], "port": cluster["port"]}
            ),
        }
        for key, value in job_env.items():
            monkeypatch.setenv(key, value)
        generated = subprocess.run(
            [sys.executable, "-m", "o2o.cli", "generate", "--customers", str(CUSTOMERS), "--days", str(DAYS),
             "--seed", str(SEED), "--landing", settings["landing"]],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert generated.returncode == 0, generated.stderr

        log = tmp_path / "bronze_ingest.log"
        exit_code = spark_submit(
            cluster["url"], dist, "bronze_ingest", ["--env", "cluster", "--as-of", AS_OF.isoformat()],
            dict(os.environ), log,
        )  # fmt: skip
        assert exit_code == 0, (
            f"spark-submit bronze exited {exit_code}:\n{log.read_text(errors='replace')[-6000:]}"
        )
        bronze_versions = {feed: lake.version(spark, cfg, f"bronze.{feed}") for feed in FEEDS}

        dag = DagBag(dag_folder=str(PROJECT / "dags")).dags[DAG_ID]  # a copy of its own: retries off below
        assert {task.application for task in dag.tasks} <= {str(p) for p in (dist / "jobs").glob("*.py")}
        for task in dag.tasks:
            task.retries = 0  # a failure shows at once instead of after the back-off delays
        run = dag.test(
            logical_date=datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=timezone.utc),
            run_conf={"env": "cluster"},
        )
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert states == {stage: "success" for stage in STAGES}, states
        assert run.state == "success"

        # Every job ran on the cluster (not in a local master inside the driver), with an executor on each worker.
        finished = master_state(cluster["webui"])["completedapps"]
        names = sorted(app["name"] for app in finished)
        assert names == sorted(
            ["o2o-bronze_ingest", *(f"o2o-{stage}-{AS_OF.isoformat()}" for stage in STAGES)]
        )
        assert {app["state"] for app in finished} == {"FINISHED"}
        for work_dir in cluster["work_dirs"]:
            assert len([d for d in work_dir.glob("app-*") if d.is_dir()]) == len(finished), sorted(
                work_dir.iterdir()
            )

    assert {feed: lake.version(spark, cfg, f"bronze.{feed}") for feed in FEEDS} == bronze_versions
    assert all(lake.read(spark, cfg, f"bronze.{feed}").count() > 0 for feed in FEEDS)
    bronze_orders = sum(
        lake.read(spark, cfg, f"bronze.{feed}").count() for feed in ("online_orders", "pos_sales")
    )
    assert 0 < lake.read(spark, cfg, "silver.orders").count() <= bronze_orders
    on_as_of = F.col("as_of") == F.lit(AS_OF)
    rfm = lake.read(spark, cfg, "gold.customer_rfm").where(on_as_of)
    rfm_rows = rfm.count()
    assert 0 < rfm_rows <= lake.read(spark, cfg, "silver.customers").count()
    assert rfm.select("customer_key").distinct().count() == rfm_rows
    assert lake.read(spark, cfg, "gold.model_metrics").count() > 0
    assert lake.read(spark, cfg, "ops.models").count() == 1
    recommendations = lake.read(spark, cfg, "gold.recommendations")
    assert recommendations.count() > 0
    assert recommendations.groupBy("customer_key").count().where(F.col("count") > cfg.reco.top_n).count() == 0
    runs = lake.read(spark, cfg, "ops.pipeline_runs").select("stage", "status", "as_of").collect()
    assert sorted(r["stage"] for r in runs) == sorted(["bronze", *STAGES])  # bronze by hand, then the DAG
    assert {(r["status"], r["as_of"]) for r in runs} == {("succeeded", AS_OF)}
