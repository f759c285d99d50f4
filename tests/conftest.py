"""Shared fixtures: one Delta-enabled local[2] session for the whole run, a fresh lake per test, one sample lake."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from o2o.config import Config, load_config
from o2o.gold.segments import load_segment_rules
from o2o.pipeline import run_pipeline, run_stage
from o2o.sources.generator import MANIFEST, generate
from o2o.spark import get_spark
from processes import NO_CODEGEN_SPARK_CONF, SHORT_LIVED_JVM_ENV

PROJECT = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    return Path(os.environ.get("O2O_DATA_DIR", PROJECT.parent / "shared" / "data"))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Tests on the one sample lake share a pytest-xdist group: one worker builds it, once (`--dist loadgroup`)."""
    for item in items:
        if {"sample_lake", "trained_sample_lake"} & set(item.fixturenames):
            item.add_marker(pytest.mark.xdist_group("sample_lake"))


@pytest.fixture(scope="session")
def base_cfg() -> Config:
    """The local config with a small Spark: local[2], UI off, two shuffle partitions.

    Data Docs rendering is off by default here (it costs seconds per gate); the tests of the docs turn it on.
    Expressions are interpreted, not compiled (processes.NO_CODEGEN_SPARK_CONF). Whole-stage code generation
    stays on: with it off every operator is an RDD of its own, and the ALS lineage of the sample-lake test
    grew deep enough to overflow the task deserializer's stack.
    """
    return load_config(
        "local",
        conf_dir=PROJECT / "conf",
        overrides={
            "spark": {
                "master": "local[2]",
                "shuffle_partitions": 2,
                "ui_enabled": False,
                "driver_memory": "3g",
                "extra": {
                    "spark.sql.codegen.factoryMode": NO_CODEGEN_SPARK_CONF["spark.sql.codegen.factoryMode"]
                },
            },
            "quality": {"data_docs": False},
        },
    )


@pytest.fixture(scope="session")
def spark(base_cfg):
    session = get_spark(base_cfg)
    yield session
    # Airflow's tests turn logging up to INFO; py4j's connection objects log at INFO when collected at
    # interpreter exit, after pytest has closed the streams ("Logging error ... closed file").
    logging.getLogger("py4j").setLevel(logging.WARNING)
    session.stop()


@pytest.fixture(autouse=True)
def _release_cached_frames(request):
    """Free what a test cached or checkpointed locally, so one session's memory does not fill up over the suite.

    Without it the reco stage test, late in a full run, died with a Spark OutOfMemoryError in a hash
    aggregate (alone it passes): blocks left by earlier tests held the memory its tasks needed.
    """
    yield
    if "spark" in request.fixturenames:
        session = request.getfixturevalue("spark")
        session.catalog.clearCache()
        for rdd in list(session.sparkContext._jsc.getPersistentRDDs().values()):
            rdd.unpersist(False)


@pytest.fixture()
def cfg(base_cfg, tmp_path) -> Config:
    """The local config pointed at a lake and landing folder of this test's own."""
    return base_cfg.replace(
        lake={
            "root": str(tmp_path / "lake"),
            "landing": str(tmp_path / "landing"),
            "reports": "",
            "checkpoints": "",
        }
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real public data sets (../shared/data or $O2O_DATA_DIR)."""
    return _data_dir()


# The sample lake: small enough for CI, large enough that a simulated campaign's effect can be measured.
SAMPLE_CUSTOMERS = 1000
SAMPLE_DAYS = 45
SAMPLE_SEED = 1
CAMPAIGN = {"campaign_id": "winback_at_risk", "start_day": 28, "window_days": 14, "lift": 1.0}
PLACEBO_CAMPAIGN = "placebo_same_list"  # same list and window, no simulated lift: its effect must be zero


@dataclass(frozen=True)
class SampleLake:
    """A lake the pipeline has filled: its config, folders, the manifest of the truth and its as-of dates.

    Bronze and silver ran once, for `as_of` (the last generated day, after the campaign window); gold ran for
    `list_as_of` (the day before the simulated campaign, so the list sent is stored) and then for `as_of`;
    `trained_sample_lake` adds a model and recommendations for `as_of`.
    """

    cfg: Config
    root: Path
    landing: Path
    as_of: date
    list_as_of: date
    manifest: dict

    def env(self) -> dict[str, str]:
        """Environment variables that point `load_config` (in another process) at this lake, with a small Spark."""
        return {
            "O2O_ENV": self.cfg.env,
            "O2O__LAKE__ROOT": str(self.root),
            "O2O__LAKE__LANDING": str(self.landing),
            "O2O__GOLD__CAMPAIGNS_FILE": self.cfg.gold.campaigns_file,
            "O2O__SPARK__MASTER": "local[2]",
            "O2O__SPARK__SHUFFLE_PARTITIONS": "2",
            "O2O__SPARK__UI_ENABLED": "false",
            "O2O__SPARK__DRIVER_MEMORY": "1g",
            "O2O__SPARK__EXTRA": json.dumps(NO_CODEGEN_SPARK_CONF),
            **SHORT_LIVED_JVM_ENV,  # the process runs one notebook or command
        }


def _sample_campaigns(cfg: Config, path: Path, start: date) -> None:
    """The simulated campaign and a placebo, both sent to every segment of the score scheme from `start`."""
    rules = load_segment_rules(cfg.resolve(cfg.gold.segments_file))
    segments = [segment.name for segment in rules.score_segments]
    campaigns = [
        {
            "campaign_id": campaign_id,
            "name": campaign_id,
            "segments": segments,
            "start_date": start.isoformat(),
        }
        for campaign_id in (CAMPAIGN["campaign_id"], PLACEBO_CAMPAIGN)
    ]
    path.write_text(yaml.safe_dump({"campaigns": campaigns}, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="session")
def sample_lake(spark, base_cfg, tmp_path_factory) -> SampleLake:
    """1,000 customers over 45 days with a simulated campaign, run once through bronze, silver and gold.

    O2O_SAMPLE_LAKE=<folder> reuses (or builds once into) a folder of your own, to iterate on the
    tests without rebuilding; CI leaves it unset so every run builds a fresh lake.
    """
    reuse = os.environ.get("O2O_SAMPLE_LAKE")
    folder = Path(reuse).resolve() if reuse else tmp_path_factory.mktemp("sample")
    folder.mkdir(parents=True, exist_ok=True)
    start = base_cfg.generator.start_date
    campaign_start = start + timedelta(days=CAMPAIGN["start_day"])
    cfg = base_cfg.replace(
        lake={
            "root": str(folder / "lake"),
            "landing": str(folder / "landing"),
            "reports": "",
            "checkpoints": "",
        },
        generator={"campaign": dict(CAMPAIGN)},
        gold={"campaigns_file": str(folder / "campaigns.yaml")},
    )
    sample = SampleLake(
        cfg,
        folder / "lake",
        folder / "landing",
        as_of=start + timedelta(days=SAMPLE_DAYS - 1),
        list_as_of=campaign_start - timedelta(days=1),
        manifest={},
    )
    done = folder / "_pipeline_done"
    if not (reuse and done.exists()):
        _sample_campaigns(cfg, folder / "campaigns.yaml", campaign_start)
        generate(cfg, sample.landing, customers=SAMPLE_CUSTOMERS, days=SAMPLE_DAYS, seed=SAMPLE_SEED)
        run_pipeline(spark, cfg, sample.as_of, stages=("bronze", "silver"))
        run_stage(spark, cfg, "gold", sample.list_as_of)  # gold reads only facts up to its as-of
        run_stage(spark, cfg, "gold", sample.as_of)
        done.touch()
    manifest = json.loads((sample.landing / MANIFEST).read_text(encoding="utf-8"))
    return dataclasses.replace(sample, manifest=manifest)


@pytest.fixture(scope="session")
def trained_sample_lake(spark, sample_lake) -> SampleLake:
    """The sample lake with a model trained and recommendations published for its as-of (once per session)."""
    done = sample_lake.root.parent / "_recommendations_done"
    if not done.exists():
        run_pipeline(spark, sample_lake.cfg, sample_lake.as_of, stages=("train", "recommend"))
        done.touch()
    return sample_lake
