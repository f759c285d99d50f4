"""A bronze run killed with SIGKILL in the middle, then rerun, ends with every landing record exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from o2o import lake
from o2o.bronze import ingest
from o2o.contracts import FEEDS, LANDING_FORMAT
from o2o.sources.generator import generate

pytestmark = pytest.mark.slow


def records_per_file(landing: Path) -> dict[str, int]:
    """Landing records counted straight from the files: non-empty lines, minus the header for CSV."""
    counts = {}
    for feed in FEEDS:
        for path in sorted((landing / feed).rglob("*")):
            if not path.is_file() or path.name.startswith(("_", ".")):
                continue
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            counts[f"{feed}|{path.resolve()}"] = len(lines) - (1 if LANDING_FORMAT[feed] == "csv" else 0)
    return counts


def test_killed_run_then_rerun_has_exact_counts(spark, cfg, tmp_path):
    landing = Path(cfg.resolve(cfg.lake.landing))
    generate(cfg, str(landing), customers=400, days=6, seed=3)
    expected = records_per_file(landing)
    env = {
        **os.environ,
        "O2O__LAKE__ROOT": cfg.resolve(cfg.lake.root),
        "O2O__LAKE__LANDING": str(landing),
        "O2O__SPARK__MASTER": "local[1]",
        "O2O__SPARK__SHUFFLE_PARTITIONS": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "o2o.cli", "run", "bronze", "--as-of", "2026-06-06"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the JVM is a child: kill the whole group
    )
    first_commit = Path(lake.table_path(cfg, f"bronze.{FEEDS[0]}")) / "_delta_log" / f"{1:020d}.json"
    deadline = time.time() + 300
    while not first_commit.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the bronze run ended before it could be killed mid-way"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert lake.version(spark, cfg, f"bronze.{FEEDS[-1]}") in (None, 0), "the kill came after the last feed"

    ingest.run(spark, cfg, date(2026, 6, 6), "rerun")

    for feed in FEEDS:
        rows = (
            lake.read(spark, cfg, f"bronze.{feed}")
            .groupBy("_source_file")
            .agg(F.count("*").alias("rows"))
            .collect()
        )
        actual = Counter(
            {f"{feed}|{ingest.canonical_uri(r['_source_file'])[len('file:') :]}": r["rows"] for r in rows}
        )
        wanted = Counter({key: n for key, n in expected.items() if key.startswith(f"{feed}|")})
        assert actual == wanted, f"bronze.{feed} differs from its landing files"
