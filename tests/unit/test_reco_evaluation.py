"""Scoring a test window: hand-computed baseline scores, whether customer lists are broadcast or shuffled."""

from datetime import datetime, timedelta

import pytest
from pyspark import StorageLevel

from o2o.reco import train

EVENTS = "customer_key string, sku string, event_type string, event_ts timestamp, quantity int, rating int"
TRAIN_END = datetime(2026, 6, 1)
EVAL_END = TRAIN_END + timedelta(days=7)
PARAMS = {"rank": 2, "regParam": 0.1, "alpha": 2.0, "maxIter": 5}
LOG2_3 = 1.584962500721156


@pytest.fixture()
def no_automatic_broadcast(spark):
    """Spark broadcasts nothing by its size estimate, so only explicit hints make broadcast joins."""
    before = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    yield
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", before)


def _interactions(spark):
    # Training, all at one moment (same decay): c1 bought s1 twice and s2; c2 bought s2 and viewed s3; c3
    # bought s1. Test week: c1 buys s2, c2 buys s1, c4 (unknown to training) buys s1 and is not scored.
    seen = TRAIN_END - timedelta(days=3)
    bought = TRAIN_END + timedelta(days=2)
    rows = [
        ("c1", "s1", "purchase", seen, 2, None),
        ("c1", "s2", "purchase", seen, 1, None),
        ("c2", "s2", "purchase", seen, 1, None),
        ("c2", "s3", "view", seen, None, None),
        ("c3", "s1", "purchase", seen, 1, None),
        ("c1", "s2", "purchase", bought, 1, None),
        ("c2", "s1", "purchase", bought, 1, None),
        ("c4", "s1", "purchase", bought, 1, None),
    ]
    return spark.createDataFrame(rows, EVENTS)


def _rc(cfg):
    return cfg.reco.__class__(**{**cfg.reco.__dict__, "min_interactions": 1, "k": 10})


def _top_join(df) -> str:
    """The strategy of the plan's outermost join (a cached input's own plan is printed below it)."""
    plan = df._jdf.queryExecution().executedPlan().toString()
    return next(
        name for line in plan.splitlines() for name in ("BroadcastHashJoin", "SortMergeJoin") if name in line
    )


def _purchases_and_reviews(interactions):
    return interactions.where("event_type IN ('purchase', 'review')")


@pytest.mark.parametrize(
    ("broadcast_max_rows", "shared"),
    [(train.BROADCAST_MAX_ROWS, False), (0, False), (train.BROADCAST_MAX_ROWS, True)],
    ids=["broadcast", "shuffled", "shared-confidences"],
)
def test_baseline_scores_match_hand_computed_values(
    spark, cfg, no_automatic_broadcast, broadcast_max_rows, shared
):
    segments = spark.createDataFrame(
        [("c1", "vip"), ("c2", "vip"), ("c3", "new")], "customer_key string, segment string"
    )
    interactions, confidences = _interactions(spark), None
    if shared:  # as the train stage runs it: confidences of every event, then purchases and reviews only
        confidences = train.Confidences(interactions, [TRAIN_END, EVAL_END], _rc(cfg))
        interactions = _purchases_and_reviews(interactions)
    scores = train.evaluate_window(
        interactions,
        TRAIN_END,
        EVAL_END,
        _rc(cfg),
        PARAMS,
        blocks=2,
        segments=segments,
        with_baselines=True,
        broadcast_max_rows=broadcast_max_rows,
        confidences=confidences,
    )
    if confidences is not None:
        confidences.release()

    # Confidence = weight x (1 + ln quantity): everyone's s1 = 5(1 + ln 2) + 5, s2 = 10, s3 = 1, so the
    # global list is s1, s2, s3: c1's s2 at rank 2 (NDCG 1/log2 3, AP 1/2), c2's s1 at rank 1.
    assert scores["global_popular"] == pytest.approx(
        {
            "customers": 2,
            "precision_at_k": 0.1,
            "recall_at_k": 1.0,
            "ndcg_at_k": (1 / LOG2_3 + 1) / 2,
            "map_at_k": 0.75,
        }
    )
    # vip (c1, c2): s2 = 10 before s1 = 5(1 + ln 2): c1's s2 at rank 1, c2's s1 at rank 2.
    assert scores["segment_popular"] == pytest.approx(scores["global_popular"])
    # Buy again: c1's own list is s1 (2 units), s2: a hit at rank 2; c2 bought only s2: no hit.
    assert scores["buy_again"] == pytest.approx(
        {
            "customers": 2,
            "precision_at_k": 0.05,
            "recall_at_k": 0.5,
            "ndcg_at_k": 1 / LOG2_3 / 2,
            "map_at_k": 0.25,
        }
    )
    assert scores["als"]["customers"] == 2


def test_customer_ids_are_broadcast_up_to_the_row_bound(spark, cfg, no_automatic_broadcast):
    interactions = _interactions(spark)
    rc = _rc(cfg)
    for bound, strategy in ((3, "BroadcastHashJoin"), (2, "SortMergeJoin")):  # c1, c2, c3 have ids
        data = train.training_set(interactions, TRAIN_END, rc, broadcast_max_rows=bound)
        try:
            joined = interactions.join(data.customer_lookup, "customer_key")
            assert _top_join(joined) == strategy
            assert sorted(r.customer_key for r in joined.select("customer_key").distinct().collect()) == [
                "c1",
                "c2",
                "c3",
            ]
        finally:
            data.release()


def _checkpoint_storage(frame) -> dict:
    """Where the blocks of a local checkpoint's RDD are stored (both False once it is released)."""
    level = frame._jdf.queryExecution().logical().rdd().getStorageLevel()
    return {"disk": level.useDisk(), "memory": level.useMemory()}


def test_training_sets_of_shared_confidences_keep_every_event_type(spark, cfg):
    events = _interactions(spark)
    rc = _rc(cfg)
    confidences = train.Confidences(events, [TRAIN_END, EVAL_END], rc)
    # On disk: cached in memory at 5M order lines, the frame left ALS too little of a 4 GiB driver heap.
    assert confidences.frame.storageLevel == StorageLevel.DISK_ONLY
    try:
        # Given only purchases, as the train stage's evaluation is: c2's view of s3 still counts.
        before_test = train.training_set(_purchases_and_reviews(events), TRAIN_END, rc, confidences)
        to_the_end = train.training_set(_purchases_and_reviews(events), EVAL_END, rc, confidences)
        try:
            assert sorted(r.sku for r in before_test.sku_ids.collect()) == ["s1", "s2", "s3"]
            assert sorted(r.customer_key for r in before_test.customer_ids.collect()) == ["c1", "c2", "c3"]
            # The test week's purchases count at the later reference only (c4 buys then).
            assert sorted(r.customer_key for r in to_the_end.customer_ids.collect()) == [
                "c1",
                "c2",
                "c3",
                "c4",
            ]
            assert before_test.ratings.count() == 5
            assert to_the_end.ratings.count() == 7
            # The ratings' checkpoint on disk only: in memory it held 1.5 GB of a 4 GiB heap at 5M order lines.
            assert _checkpoint_storage(before_test.ratings) == {"disk": True, "memory": False}
        finally:
            before_test.release()
            to_the_end.release()
        assert _checkpoint_storage(before_test.ratings) == {"disk": False, "memory": False}
        with pytest.raises(ValueError, match="no confidences before"):
            train.training_set(events, EVAL_END + timedelta(days=1), rc, confidences)
    finally:
        confidences.release()
    assert confidences.frame.storageLevel == StorageLevel.NONE
