"""Implicit ALS: Spark MLlib (the project's estimator) against the `implicit` library on the same confidence matrix.

The training matrix comes from the project's own feature code (o2o.reco.features) fed with synthetic
silver interactions; both models get the same rank, regularization, alpha and iterations and are
scored on the same held-out purchases (the project's time split) with the same metric definitions.
Confidence: Spark uses c = 1 + alpha x r internally; `implicit` takes the matrix as the confidence
itself, so it is given 1 + alpha x r (and its own alpha is left at 1).
"""

from __future__ import annotations

import os
from datetime import date

import implicit.cpu.als
import numpy as np
import pandas as pd
import pyspark.sql.functions as F
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession
from threadpoolctl import threadpool_limits

from measure import measured
from o2o.config import RecoConfig
from o2o.reco import als, features, metrics
from o2o.spark import task_slots
from ranking_numpy import ranking_metrics as numpy_ranking_metrics
from synthetic_interactions import interactions as synthetic_interactions

METRICS = ("precision_at_k", "ndcg_at_k")


def training_data(interactions: DataFrame, rc: RecoConfig, as_of: date) -> dict[str, DataFrame]:
    """The project's split: ratings before the test window (cached), id maps, and the test window's purchases."""
    window = features.windows(as_of, rc.test_days, rc.validation_days)
    confidence = features.implicit_confidence(
        interactions, window.test_start, rc.event_weights, rc.recency_half_life_days
    )
    trainable = features.active_customers(confidence, rc.min_interactions).cache()
    customer_ids = features.dense_index(trainable, "customer_key", "user").cache()
    sku_ids = features.dense_index(trainable, "sku", "item").cache()
    ratings = features.to_ratings(trainable, customer_ids, sku_ids).cache()
    relevant = features.purchases_between(interactions, window.test_start, window.end).join(
        customer_ids.select("customer_key"), "customer_key", "left_semi"
    )
    return {
        "trainable": trainable,
        "ratings": ratings,
        "customer_ids": customer_ids,
        "sku_ids": sku_ids,
        "relevant": relevant.cache(),
    }


def in_keys(recommended: DataFrame, customer_ids: DataFrame, sku_ids: DataFrame) -> DataFrame:
    """user, item, rank -> customer_key, sku, rank (what the metric code reads)."""
    return (
        recommended.join(customer_ids, "user")
        .join(F.broadcast(sku_ids), "item")
        .select("customer_key", "sku", "rank")
    )


def spark_metrics(recommended: DataFrame, relevant: DataFrame, k: int) -> dict:
    """The project's metric code (o2o.reco.metrics) on key-space recommendations."""
    # One aggregate row; bounded.
    row = metrics.ranking_metrics(recommended, relevant, k).head().asDict()
    return {"customers": int(row["customers"]), **{name: float(row[name]) for name in METRICS}}


def implicit_model(params: dict, seed: int, use_cg: bool) -> implicit.cpu.als.AlternatingLeastSquares:
    """implicit's CPU ALS with the project's parameters (alpha is applied to the matrix, see the module doc)."""
    return implicit.cpu.als.AlternatingLeastSquares(
        factors=int(params["rank"]),
        regularization=float(params["regParam"]),
        alpha=1.0,
        iterations=int(params["maxIter"]),
        use_cg=use_cg,
        random_state=seed,
        num_threads=os.cpu_count() or 2,
    )


def implicit_recommendations(
    model: implicit.cpu.als.AlternatingLeastSquares, matrix: sp.csr_matrix, users: np.ndarray, k: int
) -> pd.DataFrame:
    """Top-k items per user (already-bought items kept, as the project's evaluation does): user, item, rank."""
    items, _ = model.recommend(users, matrix[users], N=k, filter_already_liked_items=False)
    return pd.DataFrame(
        {
            "user": np.repeat(users, items.shape[1]).astype("int32"),
            "item": items.ravel().astype("int32"),
            "rank": np.tile(np.arange(1, items.shape[1] + 1), len(users)).astype("int32"),
        }
    )


def metric_cross_check(spark: SparkSession, recommended: pd.DataFrame, relevant: DataFrame, k: int) -> dict:
    """The same recommendations scored by the project's Spark metric code and by the numpy code."""
    # Plain Python strings: Spark's Arrow path cannot take pandas' Arrow-backed string columns yet.
    frame = spark.createDataFrame(recommended.astype({"customer_key": object, "sku": object}))
    by_spark = spark_metrics(frame, relevant, k)
    by_numpy = numpy_ranking_metrics(recommended, relevant.toPandas(), k)
    return {
        "spark_code": by_spark,
        "numpy_code": by_numpy,
        "max_abs_difference": max(abs(by_spark[name] - by_numpy[name]) for name in METRICS),
        "same_customers": by_spark["customers"] == by_numpy["customers"],
    }


def confidence_matrix(ratings: pd.DataFrame, alpha: float, users: int, items: int) -> sp.csr_matrix:
    """users x items CSR of 1 + alpha x r: Spark ALS's implicit confidence, which `implicit` takes as given."""
    return sp.csr_matrix(
        (
            1.0 + alpha * ratings["rating"].to_numpy(dtype="float32"),
            (ratings["user"].to_numpy(), ratings["item"].to_numpy()),
        ),
        shape=(users, items),
        dtype=np.float32,
    )


def fit_spark(
    spark: SparkSession, data: dict[str, DataFrame], params: dict, rc: RecoConfig, users: np.ndarray
) -> tuple[dict, pd.DataFrame]:
    """The project's ALS estimator fitted on the cached ratings: (fit measurements, top-k of `users` in keys).

    An untimed fit with the same parameters comes first, as implicit gets: the timed fit then compares the
    two libraries' training, not the JVM's first use of ALS code (class loading, JIT compilation).
    """
    estimator = als.build(
        params,
        implicit=True,
        seed=rc.seed,
        checkpoint_interval=rc.checkpoint_interval,
        blocks=task_slots(spark),
    )
    _, warm_up = measured(lambda: estimator.fit(data["ratings"]).userFactors.count())
    model, fit = measured(lambda: estimator.fit(data["ratings"]))
    fit["warm_up_seconds"] = warm_up["seconds"]
    scored_users = spark.createDataFrame(pd.DataFrame({"user": users.astype("int32")}))
    recommended = in_keys(als.top_items(model, scored_users, rc.k), data["customer_ids"], data["sku_ids"])
    return fit, recommended.toPandas()


def fit_implicit(
    matrix: sp.csr_matrix, params: dict, seed: int, use_cg: bool, users: np.ndarray, k: int
) -> tuple[dict, pd.DataFrame]:
    """implicit's ALS fitted on the same confidences: (fit measurements, top-k of `users` as user, item, rank)."""
    # implicit parallelises over users itself and asks for single-threaded BLAS underneath.
    with threadpool_limits(1, "blas"):
        model = implicit_model(params, seed, use_cg)
        _, fit = measured(lambda: model.fit(matrix, show_progress=False))
        return fit, implicit_recommendations(model, matrix, users, k)


def bench(spark: SparkSession, rc: RecoConfig, as_of: date, events: int, customers: int, items: int) -> dict:
    """Fit both on the same matrix: training seconds, peak memory, precision@k and NDCG@k, and the metric cross-check."""
    params = {name: values[0] for name, values in sorted(rc.grid.items())}
    source = synthetic_interactions(spark, events, customers, items, groups=20, as_of=as_of, days=120)
    data = training_data(source, rc, as_of)
    relevant = data["relevant"]
    relevant_keys = relevant.toPandas()
    ratings = data["ratings"].toPandas()
    customer_ids = data["customer_ids"].toPandas()
    sku_ids = data["sku_ids"].toPandas()
    test_users = np.sort(
        customer_ids.merge(relevant_keys[["customer_key"]].drop_duplicates())["user"].to_numpy()
    )

    fits, recommended = {}, {}
    fits["spark_als"], recommended["spark_als"] = fit_spark(spark, data, params, rc, test_users)
    matrix = confidence_matrix(ratings, float(params["alpha"]), len(customer_ids), len(sku_ids))
    fit_implicit(matrix, params, rc.seed, True, test_users[:1], rc.k)  # warm-up, untimed
    for label, use_cg in (("implicit_cg", True), ("implicit_cholesky", False)):
        fits[label], recs = fit_implicit(matrix, params, rc.seed, use_cg, test_users, rc.k)
        recommended[label] = recs.merge(customer_ids, on="user").merge(sku_ids, on="item")[
            ["customer_key", "sku", "rank"]
        ]

    result = {
        "params": params,
        "events": events,
        "customers": len(customer_ids),
        "items": len(sku_ids),
        "ratings": len(ratings),
        "test_customers": int(len(test_users)),
        "fit": fits,
        "quality": {
            name: numpy_ranking_metrics(recs, relevant_keys, rc.k) for name, recs in recommended.items()
        },
        "metric_cross_check": {
            name: metric_cross_check(spark, recommended[name], relevant, rc.k)
            for name in ("spark_als", "implicit_cg")
        },
    }
    for frame in data.values():
        frame.unpersist()
    return result
