"""Implicit ALS: Spark MLlib (the project's estimator) against the `implicit` library on the same confidence matrix.

The training matrix comes from the project's own feature code (o2o.reco.features) fed with synthetic
silver interactions; both models get the same rank, regularization, alpha and iterations and are
scored on the same held-out purchases (the project's time split) with the same metric definitions.
Confidence: Spark uses c = 1 + alpha x r internally; `implicit` takes the matrix as the confidence
itself, so it is given 1 + alpha x r (and its own alpha is left at 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from typing import TypeVar

import implicit.cpu.als
import numpy as np
import pandas as pd
import pyspark.sql.functions as F
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession
from threadpoolctl import threadpool_limits

from measure import PeakMemory, Stopwatch
from o2o.config import RecoConfig
from o2o.reco import als, features, metrics, movielens
from ranking_numpy import ranking_metrics as numpy_ranking_metrics
from synthetic_interactions import interactions as synthetic_interactions

METRICS = ("precision_at_k", "ndcg_at_k")
T = TypeVar("T")


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
    return {"ratings": ratings, "customer_ids": customer_ids, "sku_ids": sku_ids, "relevant": relevant}


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


def _measured(action: Callable[[], T]) -> tuple[T, dict]:
    """The action's result, with its wall-clock seconds and the driver's peak memory while it ran."""
    with PeakMemory() as memory, Stopwatch() as watch:
        result = action()
    return result, {"seconds": round(watch.seconds, 3), **memory.summary()}


def metric_cross_check(spark: SparkSession, recommended: pd.DataFrame, relevant: DataFrame, k: int) -> dict:
    """The same recommendations scored by the project's Spark metric code and by the numpy code."""
    by_spark = spark_metrics(spark.createDataFrame(recommended), relevant, k)
    by_numpy = numpy_ranking_metrics(recommended, relevant.toPandas(), k)
    return {
        "spark_code": by_spark,
        "numpy_code": by_numpy,
        "max_abs_difference": max(abs(by_spark[name] - by_numpy[name]) for name in METRICS),
        "same_customers": by_spark["customers"] == by_numpy["customers"],
    }


def bench(spark: SparkSession, rc: RecoConfig, as_of: date, events: int, customers: int, items: int) -> dict:
    """Fit both on the same matrix: training seconds, peak memory, precision@k and NDCG@k, and the metric cross-check."""
    params = {name: values[0] for name, values in sorted(rc.grid.items())}
    movielens.ensure_checkpoint_dir(spark)
    source = synthetic_interactions(spark, events, customers, items, groups=20, as_of=as_of, days=120)
    data = training_data(source, rc, as_of)
    relevant = data["relevant"].cache()
    relevant_keys = relevant.toPandas()
    ratings = data["ratings"].toPandas()
    customer_ids = data["customer_ids"].toPandas()
    sku_ids = data["sku_ids"].toPandas()
    test_users = np.sort(
        customer_ids.merge(relevant_keys[["customer_key"]].drop_duplicates())["user"].to_numpy()
    )

    estimator = als.build(
        params,
        implicit=True,
        seed=rc.seed,
        checkpoint_interval=rc.checkpoint_interval,
        blocks=spark.sparkContext.defaultParallelism,
    )
    spark_model, fits = _measured(lambda: estimator.fit(data["ratings"]))
    fits = {"spark_als": fits}
    users = spark.createDataFrame(pd.DataFrame({"user": test_users.astype("int32")}))
    recommended = {
        "spark_als": in_keys(
            als.top_items(spark_model, users, rc.k), data["customer_ids"], data["sku_ids"]
        ).toPandas()
    }

    matrix = sp.csr_matrix(
        (
            1.0 + float(params["alpha"]) * ratings["rating"].to_numpy(dtype="float32"),
            (ratings["user"].to_numpy(), ratings["item"].to_numpy()),
        ),
        shape=(len(customer_ids), len(sku_ids)),
        dtype=np.float32,
    )
    for label, use_cg in (("implicit_cg", True), ("implicit_cholesky", False)):
        # implicit parallelises over users itself and asks for single-threaded BLAS underneath.
        with threadpool_limits(1, "blas"):
            model = implicit_model(params, rc.seed, use_cg)
            _, fits[label] = _measured(lambda model=model: model.fit(matrix, show_progress=False))
            recs = implicit_recommendations(model, matrix, test_users, rc.k)
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
    for frame in (relevant, data["ratings"], data["customer_ids"], data["sku_ids"]):
        frame.unpersist()
    return result
