"""The shipped ALS parameters on the sample lake: ALS ranks the test window better than every baseline.

The generator gives each person twelve favourite products and two preferred categories (45% and 35% of their
picks), so a personal model has signal that popularity lists cannot have. With the old default parameters
(alpha 10, regParam 0.05) ALS scored 0.345 NDCG@10 here against segment popularity's 0.423.
"""

from __future__ import annotations

import pyspark.sql.functions as F

from o2o.reco import features, train
from o2o.reco.baselines import BASELINES
from o2o.spark import task_slots


def test_shipped_als_parameters_beat_every_baseline_on_the_test_window(spark, sample_lake):
    cfg, rc = sample_lake.cfg, sample_lake.cfg.reco
    interactions = train.read_interactions(spark, cfg).cache()
    window = features.windows(sample_lake.as_of, rc.test_days, rc.validation_days)
    _, segments = train.segments_before(spark, cfg, window)
    params = train.grid_combinations(rc.grid)[0]
    blocks = task_slots(spark)

    scores = train.evaluate_window(
        interactions, window.test_start, window.end, rc, params, blocks, segments, with_baselines=True
    )

    assert set(scores) == {"als", *BASELINES}
    assert len({s["customers"] for s in scores.values()}) == 1, "all models are scored on the same customers"
    assert scores["als"]["customers"] > 300
    best_baseline = max(scores[name]["ndcg_at_k"] for name in BASELINES)
    assert scores["als"]["ndcg_at_k"] > best_baseline + 0.01, scores
    assert scores["als"]["recall_at_k"] > max(scores[name]["recall_at_k"] for name in BASELINES), scores
    # The relevant items are the window's purchases by customers the model knows: one independent count.
    known = interactions.where(F.col("event_ts") < F.lit(window.test_start)).select("customer_key").distinct()
    buyers = (
        interactions.where(
            (F.col("event_type") == "purchase")
            & (F.col("event_ts") >= F.lit(window.test_start))
            & (F.col("event_ts") < F.lit(window.end))
            & (F.coalesce(F.col("quantity"), F.lit(1)) > 0)
        )
        .join(known, "customer_key", "left_semi")
        .select("customer_key")
        .distinct()
        .count()
    )
    assert scores["als"]["customers"] <= buyers
    interactions.unpersist()
