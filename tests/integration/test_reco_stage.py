"""Training and publishing stages on a temporary lake with a small synthetic catalogue of taste groups."""

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

import o2o
from o2o import lake
from o2o.contracts import SILVER
from o2o.reco import recommend, train

AS_OF = date(2026, 7, 30)
START = datetime(2026, 6, 1)
RFM = "as_of date, customer_key string, segment string"


def synthetic_interactions(customers: int, skus: int, days: int, seed: int, groups: int = 3) -> list[tuple]:
    """Interactions of customers in taste groups: each group browses and buys mostly its own third of the catalogue.

    Purchases are mostly new items of the group (some repeat buys), views and carts precede purchases,
    a few customers write reviews. Rows follow SILVER['interactions'].
    """
    rng = random.Random(seed)
    per_group = skus // groups
    rows = []
    for c in range(customers):
        group = c % groups
        own = [f"sku{group * per_group + i:03d}" for i in range(per_group)]
        rng.shuffle(own)
        liked = own[: max(4, per_group * 2 // 3)]
        for _ in range(rng.randint(3, 9)):
            day = rng.randrange(days)
            ts = START + timedelta(days=day, seconds=rng.randrange(86400))
            sku = rng.choice(liked) if rng.random() < 0.85 else f"sku{rng.randrange(skus):03d}"
            rows.append((f"c{c:04d}", sku, "view", ts, "app", None, None, "r0"))
            if rng.random() < 0.5:
                rows.append((f"c{c:04d}", sku, "cart", ts + timedelta(minutes=5), "app", None, None, "r0"))
                if rng.random() < 0.7:
                    rows.append(
                        (
                            f"c{c:04d}",
                            sku,
                            "purchase",
                            ts + timedelta(minutes=9),
                            "web",
                            rng.randint(1, 2),
                            None,
                            "r0",
                        )
                    )
                    if rng.random() < 0.3:
                        rating = 5 if sku in liked else 2
                        rows.append(
                            (f"c{c:04d}", sku, "review", ts + timedelta(days=2), "web", None, rating, "r0")
                        )
    return rows


def segments_for(customers: int, as_of: date) -> list[tuple]:
    """gold.customer_rfm rows: segment = the customer's taste group (a stand-in for RFM segments)."""
    return [(as_of, f"c{c:04d}", f"segment_{c % 3}") for c in range(customers)]


def _write(spark, cfg, name, rows, schema):
    frame = spark.createDataFrame(rows, schema)
    if isinstance(schema, str):
        frame.write.format("delta").mode("append").save(lake.table_path(cfg, name))
    else:
        lake.ensure_table(spark, cfg, name, schema)
        lake.append(frame, cfg, name)


@pytest.fixture()
def small_lake(spark, cfg):
    customers = 60
    rows = synthetic_interactions(customers=customers, skus=24, days=60, seed=3)
    _write(spark, cfg, "silver.interactions", rows, SILVER["interactions"])
    products = [(f"sku{i:03d}", f"product {i}", "cat", "brand", None, True, "r0") for i in range(24)]
    _write(spark, cfg, "silver.products", products, SILVER["products"])
    # "new0001" joined recently: a member with a segment but no history the model could learn from.
    people = [(f"c{c:04d}",) for c in range(customers)] + [("new0001",)]
    customer_rows = [
        (k, None, None, None, "web", START, ["web"], True, True, "Shanghai", "r0") for (k,) in people
    ]
    _write(spark, cfg, "silver.customers", customer_rows, SILVER["customers"])
    rfm = segments_for(customers, AS_OF - timedelta(days=20)) + [
        (AS_OF - timedelta(days=20), "new0001", "segment_1")
    ]
    _write(spark, cfg, "gold.customer_rfm", rfm, RFM)
    grid = {"rank": [3, 6], "regParam": [0.1], "alpha": [10.0], "maxIter": [4]}
    return cfg.replace(
        reco={"grid": grid, "min_interactions": 3, "test_days": 14, "validation_days": 14, "top_n": 5, "k": 5}
    ), rows


def test_train_records_model_metrics_and_recommend_publishes(spark, small_lake, capsys):
    cfg, rows = small_lake

    trained = train.run(spark, cfg, AS_OF, "run-train-1")

    models = lake.read(spark, cfg, "ops.models").collect()
    assert len(models) == 1
    model = models[0]
    assert model["model_version"] == trained.details["model_version"]
    assert model["code_version"] == o2o.__version__
    assert json.loads(model["input_versions"])["silver.interactions"] == 1
    tuning = json.loads(model["tuning"])
    assert [t["params"]["rank"] for t in tuning["tried"]] == [3, 6]
    assert json.loads(model["params"])["rank"] == tuning["chosen"]["rank"]
    assert set(json.loads(model["baseline_metrics"])) == {"global_popular", "segment_popular", "buy_again"}
    for folder in ("als", "customer_ids", "sku_ids"):
        assert (Path(model["model_path"]) / folder).exists()
    metric_rows = (
        lake.read(spark, cfg, "gold.model_metrics").where("split = 'test' AND metric = 'ndcg_at_k'").collect()
    )
    assert {r["model"] for r in metric_rows} == {"als", "global_popular", "segment_popular", "buy_again"}
    printed = capsys.readouterr().out
    assert "ndcg_at_k" in printed
    assert "[train] tuning: 2 parameter set(s)" in printed
    checkpoints = Path(lake.checkpoints_dir(cfg))
    assert not checkpoints.exists() or not any(checkpoints.iterdir())  # the run's checkpoints went with it

    published = recommend.run(spark, cfg, AS_OF, "run-reco-1")

    recs = lake.read(spark, cfg, "gold.recommendations").collect()
    assert published.rows_out == len(recs) > 0
    assert {r["model_version"] for r in recs} == {model["model_version"]}
    bought = {(r[0], r[1]) for r in rows if r[2] == "purchase"}
    assert not {(r["customer_key"], r["sku"]) for r in recs} & bought
    by_customer = {}
    for r in recs:
        by_customer.setdefault(r["customer_key"], []).append(r)
    assert all(sorted(x["rank"] for x in lst) == list(range(1, len(lst) + 1)) for lst in by_customer.values())
    assert all(r["score"] == r["score"] for r in recs)  # no NaN
    newcomer = by_customer["new0001"]
    assert {r["reason"] for r in newcomer} == {"segment_popular"}
    assert len(newcomer) == 5
    # segment_1 customers (c % 3 == 1) browse skus 8..15 most.
    assert sum(8 <= int(r["sku"][3:]) <= 15 for r in newcomer) >= 4
    assert "als" in {r["reason"] for r in recs}

    one = recommend.recommend_for(spark, cfg, "new0001")
    assert [r["rank"] for r in one] == [1, 2, 3, 4, 5]
    assert [r["sku"] for r in one] == [r["sku"] for r in sorted(newcomer, key=lambda r: r["rank"])]
