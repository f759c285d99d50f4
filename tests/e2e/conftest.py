"""One small sample lake for the whole e2e session: generated landing files run through every stage."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from o2o.config import Config
from o2o.pipeline import run_pipeline
from o2o.sources.generator import generate

SAMPLE_CUSTOMERS = 300
SAMPLE_DAYS = 10
SAMPLE_SEED = 1


@dataclass(frozen=True)
class SampleLake:
    """A lake the pipeline has filled: its config, its folders and the as-of date it was run for."""

    cfg: Config
    root: Path
    landing: Path
    as_of: date

    def env(self) -> dict[str, str]:
        """Environment variables that point `load_config` (in another process) at this lake, with a small Spark."""
        return {
            "O2O_ENV": self.cfg.env,
            "O2O__LAKE__ROOT": str(self.root),
            "O2O__LAKE__LANDING": str(self.landing),
            "O2O__SPARK__MASTER": "local[2]",
            "O2O__SPARK__SHUFFLE_PARTITIONS": "2",
            "O2O__SPARK__UI_ENABLED": "false",
            "O2O__SPARK__DRIVER_MEMORY": "1g",
        }


@pytest.fixture(scope="session")
def sample_lake(spark, base_cfg, tmp_path_factory) -> SampleLake:
    """300 customers over 10 days, generated and run through bronze, silver, gold, train and recommend once.

    O2O_E2E_SAMPLE_LAKE=<folder> reuses (or builds once into) a folder of your own, to iterate on the
    e2e tests without rebuilding; CI leaves it unset so every run builds a fresh lake.
    """
    reuse = os.environ.get("O2O_E2E_SAMPLE_LAKE")
    folder = Path(reuse) if reuse else tmp_path_factory.mktemp("sample")
    cfg = base_cfg.replace(
        lake={
            "root": str(folder / "lake"),
            "landing": str(folder / "landing"),
            "reports": "",
            "checkpoints": "",
        }
    )
    as_of = cfg.generator.start_date + timedelta(days=SAMPLE_DAYS - 1)
    sample = SampleLake(cfg, folder / "lake", folder / "landing", as_of)
    done = folder / "_pipeline_done"
    if reuse and done.exists():
        return sample
    generate(cfg, sample.landing, customers=SAMPLE_CUSTOMERS, days=SAMPLE_DAYS, seed=SAMPLE_SEED)
    run_pipeline(spark, cfg, as_of)
    done.touch()
    return sample
