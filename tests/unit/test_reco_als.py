"""ALS training: id maps saved with the model, seeded reproducibility, checkpoints only for fits longer than the interval."""

import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality

from o2o import lake
from o2o.reco import als
from o2o.reco.train import fit_implicit

EVENTS = "customer_key string, sku string, event_type string, event_ts timestamp, quantity int, rating int"
REFERENCE = datetime(2026, 6, 30)


def _events(spark):
    # Two taste groups: customers a* like skus x*, customers b* like skus y*.
    rows = []
    for group, skus in (("a", ("x1", "x2", "x3")), ("b", ("y1", "y2", "y3"))):
        for c in range(4):
            for s, sku in enumerate(skus):
                if (c + s) % 3 != 2:
                    rows.append(
                        (f"{group}{c}", sku, "view", REFERENCE - timedelta(days=c + s + 1), None, None)
                    )
                    rows.append((f"{group}{c}", sku, "purchase", REFERENCE - timedelta(days=c + 1), 1, None))
    return spark.createDataFrame(rows, EVENTS)


def _rc(cfg, **grid):
    params = {"rank": 3, "regParam": 0.1, "alpha": 5.0, "maxIter": 5, **grid}
    return cfg.reco.__class__(
        **{**cfg.reco.__dict__, "min_interactions": 1, "checkpoint_interval": 5}
    ), params


def test_id_maps_round_trip_through_the_saved_model(spark, cfg, tmp_path):
    rc, params = _rc(cfg)
    fit = fit_implicit(_events(spark), REFERENCE, rc, params, blocks=2)
    path = str(tmp_path / "models" / "v1")

    als.save(fit.model, fit.customer_ids, fit.sku_ids, path)
    model, customer_ids, sku_ids = als.load(spark, path)

    expected_customers = spark.createDataFrame(
        [(k, i) for i, k in enumerate(["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"])],
        "customer_key string, user int",
    )
    expected_skus = spark.createDataFrame(
        [(k, i) for i, k in enumerate(["x1", "x2", "x3", "y1", "y2", "y3"])], "sku string, item int"
    )
    assert_df_equality(customer_ids, expected_customers, ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(sku_ids, expected_skus, ignore_row_order=True, ignore_nullable=True)
    # Scores from the reloaded model map back to the original keys.
    users = customer_ids.where("customer_key = 'a0'").select("user")
    back = als.top_items(model, users, 6).join(customer_ids, "user").join(sku_ids, "item")
    assert {r["customer_key"] for r in back.collect()} == {"a0"}
    assert {r["sku"] for r in back.collect()} == {"x1", "x2", "x3", "y1", "y2", "y3"}
    fit.release()


def _factors(fit):
    # Tiny model (8 users); bounded.
    return sorted(
        (r["id"], tuple(round(v, 6) for v in r["features"])) for r in fit.model.userFactors.collect()
    )


def test_same_data_and_seed_give_the_same_model(spark, cfg):
    rc, params = _rc(cfg)
    events = _events(spark)

    first = _factors(fit_implicit(events, REFERENCE, rc, params, blocks=2))
    second = _factors(fit_implicit(events, REFERENCE, rc, params, blocks=2))
    other_seed = _factors(
        fit_implicit(
            events, REFERENCE, rc.__class__(**{**rc.__dict__, "seed": rc.seed + 1}), params, blocks=2
        )
    )

    assert first == second
    assert first != other_seed


def test_thirty_iterations_with_checkpointing_do_not_overflow(spark, cfg):
    spark.sparkContext.setCheckpointDir(lake.checkpoints_dir(cfg))
    rc, params = _rc(cfg, maxIter=30)

    fit = fit_implicit(_events(spark), REFERENCE, rc, params, blocks=2)

    users = fit.customer_ids.select("user")
    scores = [r["score"] for r in als.top_items(fit.model, users, 3).collect()]
    assert len(scores) == 8 * 3
    assert all(math.isfinite(s) for s in scores)
    fit.release()


def _unset_checkpoint_dir(spark):
    # SparkContext has no public way to unset its checkpoint folder; the Scala field's setter does it.
    getattr(spark.sparkContext._jsc.sc(), "checkpointDir_$eq")(spark.sparkContext._jvm.scala.Option.empty())


def test_fitting_in_a_session_without_checkpoint_folder_sets_one(spark, cfg):
    # A session whose first ALS fit comes from a notebook or test (no train stage ran to set the lake's
    # folder): without a folder ALS never cuts its lineage, and a long fit overflowed the stack.
    saved = spark.sparkContext.getCheckpointDir()
    _unset_checkpoint_dir(spark)
    try:
        assert spark.sparkContext.getCheckpointDir() is None
        rc, params = _rc(cfg, maxIter=12)

        fit = fit_implicit(_events(spark), REFERENCE, rc, params, blocks=2)

        folder = spark.sparkContext.getCheckpointDir()
        assert folder is not None and "o2o-als-checkpoints-" in folder
        assert fit.model.userFactors.count() == 8
        fit.release()
    finally:
        if saved:
            spark.sparkContext.setCheckpointDir(saved)


def _rdd_checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.rglob("rdd-*")) if folder.exists() else []


def test_a_runs_checkpoints_are_deleted_when_it_ends_and_the_session_folder_is_put_back(spark, cfg, tmp_path):
    parent = tmp_path / "checkpoints"
    spark.sparkContext.setCheckpointDir(str(tmp_path / "session"))
    session_folder = spark.sparkContext.getCheckpointDir()
    rc, params = _rc(cfg, maxIter=12)

    with als.run_checkpoints(spark, str(parent), "run-1"):
        fit = fit_implicit(_events(spark), REFERENCE, rc, params, blocks=2)
        written = _rdd_checkpoints(parent / "run-1")
        fit.release()

    assert written, "12 iterations with a checkpoint every 5 wrote no checkpoint"
    assert not (parent / "run-1").exists()
    assert spark.sparkContext.getCheckpointDir() == session_folder
    assert _rdd_checkpoints(tmp_path / "session") == []


def test_a_failed_runs_checkpoints_are_deleted_too(spark, cfg, tmp_path):
    parent = tmp_path / "checkpoints"
    rc, params = _rc(cfg, maxIter=12)

    with pytest.raises(RuntimeError, match="stage failed"), als.run_checkpoints(spark, str(parent), "run-2"):
        fit_implicit(_events(spark), REFERENCE, rc, params, blocks=2).release()
        assert _rdd_checkpoints(parent / "run-2")
        raise RuntimeError("stage failed after fitting")

    assert not (parent / "run-2").exists()


def test_a_fit_no_longer_than_the_interval_writes_no_checkpoint(spark, cfg, tmp_path):
    # Its lineage never exceeds the interval's bound, so Spark's write of the last (implicit) factors
    # would cut nothing: the estimator gets no interval at all.
    parent = tmp_path / "checkpoints"
    rc, params = _rc(cfg, maxIter=5)  # checkpoint_interval 5: Spark would write at iteration 5

    with als.run_checkpoints(spark, str(parent), "run-3"):
        fit = fit_implicit(_events(spark), REFERENCE, rc, params, blocks=2)
        assert fit.model.userFactors.count() == 8
        written = _rdd_checkpoints(parent / "run-3")
        fit.release()

    assert written == []


def test_lineage_checkpoints_keeps_the_interval_only_for_longer_fits():
    assert [als.lineage_checkpoints(n, 10) for n in (1, 10, 11, 20)] == [-1, -1, 10, 10]
