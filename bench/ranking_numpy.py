"""Precision@k and NDCG@k in numpy, with the definitions of o2o.reco.metrics (so results from outside Spark compare).

precision = hits in the top k / k; NDCG = sum over hits of 1/log2(rank + 1), divided by the same sum
over ranks 1..min(|relevant|, k); the mean is over the customers with relevant items, and a customer
without recommendations scores 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def ranking_metrics(recommended: pd.DataFrame, relevant: pd.DataFrame, k: int) -> dict:
    """Customers evaluated, mean precision_at_k and ndcg_at_k.

    recommended: customer_key, sku, rank (1 = best); relevant: customer_key, sku (duplicates ignored).
    """
    truth = relevant[["customer_key", "sku"]].drop_duplicates()
    relevant_items = truth.groupby("customer_key").size().rename("relevant_items")
    hits = recommended[recommended["rank"] <= k].merge(truth, on=["customer_key", "sku"], how="inner")
    per_hit_gain = 1.0 / np.log2(hits["rank"].to_numpy(dtype="float64") + 1.0)
    gains = (
        hits.assign(gain=per_hit_gain)
        .groupby("customer_key")
        .agg(hits=("sku", "size"), dcg=("gain", "sum"))
        .reindex(relevant_items.index, fill_value=0)
    )
    discounts = np.cumsum(1.0 / np.log2(np.arange(1, k + 1, dtype="float64") + 1.0))
    ideal = discounts[np.minimum(relevant_items.to_numpy(), k) - 1]
    return {
        "customers": int(len(relevant_items)),
        "precision_at_k": float(np.mean(gains["hits"].to_numpy() / k)) if len(gains) else 0.0,
        "ndcg_at_k": float(np.mean(gains["dcg"].to_numpy() / ideal)) if len(gains) else 0.0,
    }
