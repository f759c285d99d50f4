"""A silver run killed with SIGKILL half-way through its writes, then rerun, ends exactly as a clean run."""

from __future__ import annotations

import shutil

from o2o import lake
from o2o.contracts import SILVER
from o2o.pipeline import run_stage
from processes import delta_commit, kill_o2o_when

# Who wrote a row and when differs between two runs by design; everything else must be identical.
RUN_COLUMNS = ("run_id", "updated_run_id", "merged_at", "quarantined_at")


def test_killed_silver_run_then_rerun_equals_the_clean_run(spark, sample_lake, tmp_path):
    root = tmp_path / "lake"
    # The sample lake's bronze (same landing files); its silver is the clean run to compare against.
    shutil.copytree(sample_lake.root / "bronze", root / "bronze")
    cfg = sample_lake.cfg.replace(lake={"root": str(root)})
    # Killed once silver.orders is merged: quarantine and products are written, the rest is not.
    orders_merged = delta_commit(lake.table_path(cfg, "silver.orders"), 1)
    kill_o2o_when(
        ["run", "silver", "--as-of", sample_lake.as_of.isoformat()],
        {**sample_lake.env(), "O2O__LAKE__ROOT": str(root)},
        orders_merged,
    )
    assert not lake.exists(spark, cfg, "silver.customer_identity"), "the kill came after the last write"
    assert not lake.exists(spark, cfg, "ops.silver_watermarks")

    run_stage(spark, cfg, "silver", sample_lake.as_of)

    assert lake.read(spark, cfg, "silver.interactions").count() > 0

    for table in SILVER:
        rerun = lake.read(spark, cfg, f"silver.{table}")
        clean = lake.read(spark, sample_lake.cfg, f"silver.{table}")
        columns = [c for c in SILVER[table].fieldNames() if c not in RUN_COLUMNS]
        rerun, clean = rerun.select(*columns), clean.select(*columns)
        # As multisets: the same size and nothing of the rerun missing from the clean run means equal.
        assert rerun.count() == clean.count(), table
        assert rerun.exceptAll(clean).isEmpty(), table
