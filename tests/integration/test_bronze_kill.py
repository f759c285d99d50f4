"""A bronze run killed with SIGKILL in the middle, then rerun, ends with every landing record exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from o2o import lake
from o2o.bronze import ingest
from o2o.contracts import FEEDS, LANDING_FORMAT
from o2o.sources.generator import generate
from processes import delta_commit, kill_o2o_when

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
        "O2O__LAKE__ROOT": cfg.resolve(cfg.lake.root),
        "O2O__LAKE__LANDING": str(landing),
        "O2O__SPARK__MASTER": "local[1]",
        "O2O__SPARK__SHUFFLE_PARTITIONS": "2",
    }
    first_commit = delta_commit(lake.table_path(cfg, f"bronze.{FEEDS[0]}"), 1)
    kill_o2o_when(["run", "bronze", "--as-of", "2026-06-06"], env, first_commit, timeout_s=300)
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
