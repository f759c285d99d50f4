"""Shared fixtures: one Delta-enabled local[2] session for the whole run, a fresh lake per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from o2o.config import Config, load_config
from o2o.spark import get_spark

PROJECT = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    return Path(os.environ.get("O2O_DATA_DIR", PROJECT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def base_cfg() -> Config:
    """The local config with a small Spark: local[2], UI off, two shuffle partitions.

    Data Docs rendering is off by default here (it costs seconds per gate); the tests of the docs turn it on.
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
            },
            "quality": {"data_docs": False},
        },
    )


@pytest.fixture(scope="session")
def spark(base_cfg):
    session = get_spark(base_cfg)
    yield session
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
