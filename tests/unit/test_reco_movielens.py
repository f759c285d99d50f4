"""Explicit ALS on MovieLens 100K fold 1 beats Surprise's published SVD RMSE (0.934)."""

import pytest

from o2o.reco import movielens
from realdata import require_data


@pytest.mark.real_data
def test_fold_one_rmse_below_surprise_svd(spark, data_dir):
    folder = require_data(data_dir / "movielens_100k" / "u1.base").parent

    result = movielens.cross_validate(spark, folder, folds=(1,))

    fold = result["folds"][0]
    assert fold["test_rows"] == 20000
    assert fold["scored_rows"] > 19900  # only pairs with an unseen user or item are dropped
    assert fold["rmse"] < movielens.SURPRISE["SVD"][0]
    assert fold["mae"] < fold["rmse"]
