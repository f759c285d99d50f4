"""Ranking metrics at k against a hand-computed example and Spark's own RankingEvaluator."""

import math

import pytest
from pyspark.ml.evaluation import RankingEvaluator

from o2o.reco.metrics import per_customer_ranking, ranking_metrics, rating_errors

K = 3
RECOMMENDED = [
    ("A", "s1", 1),
    ("A", "s2", 2),
    ("A", "s3", 3),
    ("A", "s4", 4),  # beyond k: a hit here must not count
    ("B", "s5", 1),
    ("B", "s6", 2),
    ("D", "s1", 1),  # D bought nothing in the window: not evaluated
]
RELEVANT = [("A", "s2"), ("A", "s4"), ("A", "s9"), ("B", "s5"), ("C", "s7")]


def _frames(spark):
    recommended = spark.createDataFrame(RECOMMENDED, "customer_key string, sku string, rank int")
    relevant = spark.createDataFrame(RELEVANT, "customer_key string, sku string")
    return recommended, relevant


def _hand_computed() -> dict:
    # A: one hit (s2) at rank 2 of 3 relevant; B: one hit at rank 1 of 1 relevant; C: no list at all.
    idcg_three = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    per_customer = {
        "A": (1 / 3, 1 / 3, (1 / math.log2(3)) / idcg_three, (1 / 2) / 3),
        "B": (1 / 3, 1.0, 1.0, 1.0),
        "C": (0.0, 0.0, 0.0, 0.0),
    }
    means = [sum(values[i] for values in per_customer.values()) / 3 for i in range(4)]
    return dict(zip(("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"), means, strict=True))


def test_ranking_metrics_match_hand_computed_example(spark):
    recommended, relevant = _frames(spark)

    row = ranking_metrics(recommended, relevant, K).head().asDict()

    expected = _hand_computed()
    assert row["customers"] == 3
    for name, value in expected.items():
        assert row[name] == pytest.approx(value, abs=1e-9), name
    assert expected["ndcg_at_k"] == pytest.approx(0.432027, abs=1e-6)  # the hand sum written out once


def test_per_customer_values_for_a_single_hit_at_rank_two(spark):
    recommended, relevant = _frames(spark)

    a = per_customer_ranking(recommended, relevant, K).where("customer_key = 'A'").head()

    assert a["hits"] == 1
    assert a["map_at_k"] == pytest.approx(1 / 6)
    assert a["ndcg_at_k"] == pytest.approx(0.63093 / 2.13093, abs=1e-5)


def test_ranking_metrics_agree_with_spark_ranking_evaluator(spark):
    recommended, relevant = _frames(spark)
    lists = spark.createDataFrame(
        [([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 9.0]), ([5.0, 6.0], [5.0]), ([], [7.0])],
        "prediction array<double>, label array<double>",
    )
    ours = ranking_metrics(recommended, relevant, K).head().asDict()

    for spark_name, our_name in [
        ("precisionAtK", "precision_at_k"),
        ("recallAtK", "recall_at_k"),
        ("ndcgAtK", "ndcg_at_k"),
        ("meanAveragePrecisionAtK", "map_at_k"),
    ]:
        theirs = RankingEvaluator(metricName=spark_name, k=K).evaluate(lists)
        assert ours[our_name] == pytest.approx(theirs, abs=1e-9), our_name


def test_rating_errors(spark):
    predictions = spark.createDataFrame(
        [(4.0, 3.0), (2.0, 4.0), (5.0, 5.0)], "rating double, prediction double"
    )

    row = rating_errors(predictions).head()

    assert row["rows"] == 3
    assert row["rmse"] == pytest.approx(math.sqrt((1 + 4 + 0) / 3))
    assert row["mae"] == pytest.approx((1 + 2 + 0) / 3)
