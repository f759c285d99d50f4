"""MovieLens 100K, official 5-fold splits: explicit ALS RMSE/MAE and fit time next to Surprise's published table.

Usage: .venv/bin/python bench/movielens_bench.py [--rank 20] [--reg 0.1] [--iters 20] [--folds 1,2,3,4,5]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from o2o.config import load_config
from o2o.reco import movielens
from o2o.spark import get_spark

PROJECT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the cross-validation and print per-fold numbers, the mean, and the reference table."""
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
    result = movielens.cross_validate(
        spark,
        Path(args.data_dir) / "movielens_100k",
        rank=args.rank,
        regParam=args.reg,
        maxIter=args.iters,
        nonnegative=args.nonnegative,
        folds=folds,
    )
    print(f"MovieLens 100K, explicit ALS {result['params']}, official folds {folds}")
    print(f"{'fold':<6}{'RMSE':>8}{'MAE':>8}{'fit s':>8}{'scored':>9}")
    for fold in result["folds"]:
        print(
            f"u{fold['fold']:<5}{fold['rmse']:>8.4f}{fold['mae']:>8.4f}{fold['fit_seconds']:>8.1f}"
            f"{fold['scored_rows']:>6}/{fold['test_rows']}"
        )
    print()
    print(f"{'algorithm':<22}{'RMSE':>8}{'MAE':>8}")
    print(
        f"{'ALS (Spark MLlib)':<22}{result['rmse']:>8.4f}{result['mae']:>8.4f}   mean fit {result['fit_seconds']:.1f} s"
    )
    for name, (rmse, mae) in movielens.SURPRISE.items():
        print(f"{'Surprise ' + name:<22}{rmse:>8.3f}{mae:>8.3f}   (published)")
    svd_rmse = movielens.SURPRISE["SVD"][0]
    verdict = "below" if result["rmse"] < svd_rmse else "NOT below"
    print(
        f"\nALS RMSE {result['rmse']:.4f} is {verdict} Surprise SVD's {svd_rmse} (ratio {result['rmse'] / svd_rmse:.3f})"
    )
    spark.stop()


if __name__ == "__main__":
    main()
