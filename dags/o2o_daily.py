"""The daily O2O pipeline as an Airflow 3 DAG: one spark-submit task per stage, bronze to recommend.

Each task runs `jobs/<stage>.py --env <env> --as-of <logical date>` through the Spark provider's
SparkSubmitOperator. The quality gates run inside each stage: a failed critical expectation makes the
job exit non-zero, spark-submit passes that on, the task fails and nothing downstream runs. Stages are
idempotent, so a retry or a rerun of a date leaves every table as one clean run would, except that train
registers one more model version (fitted on the same data with the same seed).

Where things are (read when the DAG is parsed, so set them on the scheduler and the workers):
  O2O_HOME          folder holding jobs/ and conf/ (default: the project folder above dags/; `make dist`
                    builds one in dist/)
  O2O_PY_FILES      --py-files (default: $O2O_HOME/o2o.zip when present, else nothing: o2o installed)
  O2O_SPARK_JARS    comma-separated Delta jars (default: the project's offline cache when present); when
                    empty the Delta package is resolved with --packages
  O2O_SPARK_CONN_ID the Spark connection whose host is the master (default: spark_o2o)
"""

from __future__ import annotations

import os
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param, chain

PROJECT = Path(__file__).resolve().parents[1]
O2O_HOME = Path(os.environ.get("O2O_HOME", PROJECT))
CONN_ID = os.environ.get("O2O_SPARK_CONN_ID", "spark_o2o")
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

# (task id, job file): the stage order of o2o.pipeline.STAGES.
STAGE_JOBS = (
    ("bronze", "bronze_ingest.py"),
    ("silver", "silver_conform.py"),
    ("gold", "gold_rfm.py"),
    ("train", "reco_train.py"),
    ("recommend", "reco_recommend.py"),
)


def delta_package() -> str:
    """The Delta Maven coordinate matching the installed pyspark and delta-spark (as o2o.spark computes it)."""
    try:
        spark_minor = ".".join(version("pyspark").split(".")[:2])
        return f"io.delta:delta-spark_{spark_minor}_2.13:{version('delta-spark')}"
    except PackageNotFoundError:
        return "io.delta:delta-spark_4.1_2.13:4.4.0"  # the setup.cfg pins


def delta_jars() -> str | None:
    """Delta jars from O2O_SPARK_JARS, else the project's offline cache; None means use --packages."""
    if "O2O_SPARK_JARS" in os.environ:
        return os.environ["O2O_SPARK_JARS"] or None
    cached = sorted((PROJECT / ".cache" / "spark-jars" / "jars").glob("*.jar"))
    return ",".join(str(p) for p in cached) or None


def py_files() -> str | None:
    """The o2o package for --py-files: O2O_PY_FILES, else $O2O_HOME/o2o.zip when `make dist` built one."""
    if "O2O_PY_FILES" in os.environ:
        return os.environ["O2O_PY_FILES"] or None
    bundled = O2O_HOME / "o2o.zip"
    return str(bundled) if bundled.is_file() else None


JARS = delta_jars()

with DAG(
    dag_id="o2o_daily",
    description="Omnichannel lakehouse: bronze -> silver -> gold -> train -> recommend, gated by quality checks",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 6, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "env": Param(
            os.environ.get("O2O_ENV", "cluster"),
            type="string",
            description="config environment: conf/<env>.yaml (local, cluster, ...)",
        ),
    },
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=3),
    },
    tags=["o2o", "spark", "delta"],
    doc_md=__doc__,
) as dag:
    tasks = [
        SparkSubmitOperator(
            task_id=stage,
            conn_id=CONN_ID,
            name=f"o2o-{stage}-{{{{ ds }}}}",
            application=str(O2O_HOME / "jobs" / job),
            application_args=[
                "--env",
                "{{ params.env }}",
                "--as-of",
                "{{ ds }}",
                "--conf-dir",
                str(O2O_HOME / "conf"),
            ],  # fmt: skip
            conf={
                "spark.sql.extensions": DELTA_EXTENSION,
                "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
                "spark.sql.session.timeZone": "UTC",
            },
            jars=JARS,
            packages=None if JARS else delta_package(),
            py_files=py_files(),
        )
        for stage, job in STAGE_JOBS
    ]
    chain(*tasks)
