"""Surprise's SVD (default parameters) on the official MovieLens 100K folds: RMSE, MAE and fit seconds per fold.

Surprise predicts every test pair, falling back to the global mean and biases for users or items the
fold's training file lacks; Spark ALS drops those pairs (coldStartStrategy="drop"). So each fold also
reports the errors on the pairs whose user and item are both known, the pairs ALS scores.
"""

from __future__ import annotations

import time
from pathlib import Path

from surprise import SVD, Dataset, Reader, accuracy
from surprise.model_selection import PredefinedKFold
from surprise.prediction_algorithms.predictions import Prediction
from surprise.trainset import Trainset


def _known_pairs(trainset: Trainset, predictions: list[Prediction]) -> list[Prediction]:
    users = {trainset.to_raw_uid(inner) for inner in trainset.all_users()}
    items = {trainset.to_raw_iid(inner) for inner in trainset.all_items()}
    return [p for p in predictions if p.uid in users and p.iid in items]


def cross_validate(data_dir: str | Path, folds: tuple[int, ...], seed: int) -> dict:
    """Per-fold and mean RMSE, MAE and fit seconds of SVD(random_state=seed), all pairs and known pairs."""
    folder = Path(data_dir)
    dataset = Dataset.load_from_folds(
        [(str(folder / f"u{f}.base"), str(folder / f"u{f}.test")) for f in folds], reader=Reader("ml-100k")
    )
    per_fold = []
    for fold, (trainset, testset) in zip(folds, PredefinedKFold().split(dataset), strict=True):
        algorithm = SVD(random_state=seed)
        started = time.perf_counter()
        algorithm.fit(trainset)
        fit_seconds = time.perf_counter() - started
        predictions = algorithm.test(testset)
        known = _known_pairs(trainset, predictions)
        per_fold.append(
            {
                "fold": fold,
                "rmse": accuracy.rmse(predictions, verbose=False),
                "mae": accuracy.mae(predictions, verbose=False),
                "fit_seconds": fit_seconds,
                "test_rows": len(predictions),
                "known_rows": len(known),
                "rmse_known_pairs": accuracy.rmse(known, verbose=False),
                "mae_known_pairs": accuracy.mae(known, verbose=False),
            }
        )
    count = len(per_fold)
    return {
        "params": {"algorithm": "SVD", "defaults": True, "random_state": seed},
        "folds": per_fold,
        **{
            name: sum(fold[name] for fold in per_fold) / count
            for name in ("rmse", "mae", "fit_seconds", "rmse_known_pairs", "mae_known_pairs")
        },
    }
