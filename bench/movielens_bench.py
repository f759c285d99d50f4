"""MovieLens 100K, official 5-fold splits: explicit ALS next to Surprise's SVD run in the same process (RMSE, MAE, fit time).

Usage: .venv/bin/python bench/movielens_bench.py [--rank 30] [--reg 0.12] [--iters 20] [--folds 1,2,3,4,5]
Without scikit-surprise installed (`pip install -e ".[bench]"`), SVD falls back to its published figures,
labelled as published.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pyspark.sql import SparkSession

from o2o.config import load_config
from o2o.reco import movielens
from o2o.spark import get_spark

PROJECT = Path(__file__).resolve().parents[1]
SVD_SEED = 7


def surprise_svd(data_dir: Path, folds: tuple[int, ...]) -> dict:
    """Surprise SVD measured on the same folds, or its published figures when Surprise cannot be imported."""
    try:
        import surprise_svd
    except ImportError as exc:
        rmse, mae = movielens.SURPRISE["SVD"]
        return {
            "source": "published",
            "reason": f"scikit-surprise not importable: {exc}",
            "rmse": rmse,
            "mae": mae,
        }
    return {"source": "measured", **surprise_svd.cross_validate(data_dir, folds, SVD_SEED)}


def compare(
    spark: SparkSession,
    data_dir: Path,
    folds: tuple[int, ...],
    rank: int = movielens.DEFAULT_PARAMS["rank"],
    reg: float = movielens.DEFAULT_PARAMS["regParam"],
    iters: int = movielens.DEFAULT_PARAMS["maxIter"],
    nonnegative: bool = False,
) -> dict:
    """Explicit ALS (o2o.reco.movielens) and Surprise SVD on the same official folds, in this process."""
    als = movielens.cross_validate(
        spark, data_dir, rank=rank, regParam=reg, maxIter=iters, nonnegative=nonnegative, folds=folds
    )
    return {"folds": list(folds), "als": als, "svd": surprise_svd(data_dir, folds)}


def print_report(result: dict) -> None:
    """Per-fold ALS numbers, the means of both, and the published Surprise table."""
    als, svd = result["als"], result["svd"]
    print(f"MovieLens 100K, explicit ALS {als['params']}, official folds {tuple(result['folds'])}")
    print(f"{'fold':<6}{'RMSE':>8}{'MAE':>8}{'fit s':>8}{'scored':>9}")
    for fold in als["folds"]:
        print(
            f"u{fold['fold']:<5}{fold['rmse']:>8.4f}{fold['mae']:>8.4f}{fold['fit_seconds']:>8.1f}"
            f"{fold['scored_rows']:>6}/{fold['test_rows']}"
        )
    print()
    print(f"{'algorithm':<22}{'RMSE':>8}{'MAE':>8}")
    print(
        f"{'ALS (Spark MLlib)':<22}{als['rmse']:>8.4f}{als['mae']:>8.4f}   mean fit {als['fit_seconds']:.1f} s"
    )
    if svd["source"] == "measured":
        print(
            f"{'Surprise SVD':<22}{svd['rmse']:>8.4f}{svd['mae']:>8.4f}   mean fit {svd['fit_seconds']:.1f} s "
            f"(measured here; on known pairs only: RMSE {svd['rmse_known_pairs']:.4f})"
        )
    else:
        print(f"Surprise SVD not run here ({svd['reason']})")
    for name, (rmse, mae) in movielens.SURPRISE.items():
        print(f"{'Surprise ' + name:<22}{rmse:>8.3f}{mae:>8.3f}   (published)")
    verdict = "below" if als["rmse"] < svd["rmse"] else "NOT below"
    print(
        f"\nALS RMSE {als['rmse']:.4f} is {verdict} Surprise SVD's {svd['rmse']:.4f} ({svd['source']}; "
        f"ratio {als['rmse'] / svd['rmse']:.3f})"
    )


def main() -> None:
    """Run the cross-validation of both and print per-fold numbers, the means, and the reference table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("O2O_DATA_DIR", str(PROJECT.parent / "shared" / "data"))
    )
    parser.add_argument("--rank", type=int, default=movielens.DEFAULT_PARAMS["rank"])
    parser.add_argument("--reg", type=float, default=movielens.DEFAULT_PARAMS["regParam"])
    parser.add_argument("--iters", type=int, default=movielens.DEFAULT_PARAMS["maxIter"])
    parser.add_argument("--nonnegative", action="store_true")
    parser.add_argument("--folds", default="1,2,3,4,5")
    parser.add_argument("--env", default=os.environ.get("O2O_ENV", "local"))
    args = parser.parse_args()

    cfg = load_config(args.env, conf_dir=PROJECT / "conf")
    spark = get_spark(cfg)
    folds = tuple(int(f) for f in args.folds.split(","))
    result = compare(
        spark,
        Path(args.data_dir) / "movielens_100k",
        folds,
        rank=args.rank,
        reg=args.reg,
        iters=args.iters,
        nonnegative=args.nonnegative,
    )
    print_report(result)
    spark.stop()


if __name__ == "__main__":
    main()
