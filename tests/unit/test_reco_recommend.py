"""Final recommendation lists: ALS for known customers, segment favourites for cold start, exclusions."""

from datetime import datetime

from chispa import assert_df_equality

from o2o.reco.recommend import assemble, bought_items

CANDIDATES = "customer_key string, sku string, score double"
OUT = "customer_key string, rank int, sku string, score double, reason string"


def _assemble(spark, bought_rows):
    population = spark.createDataFrame([("c1",), ("c2",), ("c3",), ("c4",)], "customer_key string")
    known = spark.createDataFrame([("c1",), ("c2",)], "customer_key string")
    als_candidates = spark.createDataFrame(
        [
            ("c1", "s1", 0.9),
            ("c1", "s2", 0.8),
            ("c1", "s3", 0.7),
            ("c2", "s4", float("nan")),  # must never be published
            ("c2", "s1", 0.5),
            ("c2", "s6", 0.45),  # not in the catalogue
            ("c2", "s2", 0.4),
        ],
        CANDIDATES,
    )
    popular = spark.createDataFrame(
        [
            ("c1", "s9", 0.99),  # c1 is known to the model: popularity must not leak in
            ("c3", "s5", 0.6),
            ("c3", "s1", 0.3),
            ("c4", "s1", 0.5),
            ("c4", "s2", 0.2),
        ],
        CANDIDATES,
    )
    bought = spark.createDataFrame(bought_rows, "customer_key string, sku string")
    catalogue = spark.createDataFrame([(f"s{i}",) for i in (1, 2, 3, 4, 5, 9)], "sku string")
    return assemble(population, known, als_candidates, popular, bought, catalogue, top_n=2)


def test_known_customers_get_als_and_cold_start_gets_segment_popular(spark):
    result = _assemble(spark, [("c1", "s1"), ("c3", "s5")])

    expected = spark.createDataFrame(
        [
            ("c1", 1, "s2", 0.8, "als"),
            ("c1", 2, "s3", 0.7, "als"),
            ("c2", 1, "s1", 0.5, "als"),
            ("c2", 2, "s2", 0.4, "als"),
            ("c3", 1, "s1", 0.3, "segment_popular"),
            ("c4", 1, "s1", 0.5, "segment_popular"),
            ("c4", 2, "s2", 0.2, "segment_popular"),
        ],
        OUT,
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_no_already_bought_item_is_recommended(spark):
    bought = [("c1", "s1"), ("c1", "s2"), ("c2", "s1"), ("c4", "s1")]

    result = _assemble(spark, bought)

    published = {(r["customer_key"], r["sku"]) for r in result.collect()}
    assert published.isdisjoint(bought)
    assert ("c1", "s3") in published and ("c4", "s2") in published


def test_bought_items_from_orders_and_purchase_events(spark):
    orders = spark.createDataFrame(
        [
            ("o1", "c1", datetime(2026, 6, 1), "completed"),
            ("o2", "c1", datetime(2026, 6, 2), "cancelled"),
            ("o3", None, datetime(2026, 6, 2), "completed"),  # anonymous POS sale
            ("o4", "c2", datetime(2026, 7, 1), "completed"),  # after the end
        ],
        "order_id string, customer_key string, order_ts timestamp, status string",
    )
    lines = spark.createDataFrame(
        [("o1", "s1", 1), ("o1", "s2", -1), ("o2", "s3", 1), ("o3", "s4", 1), ("o4", "s5", 1)],
        "order_id string, sku string, quantity int",
    )
    events = spark.createDataFrame(
        [("c2", "s6", "purchase", datetime(2026, 6, 3)), ("c2", "s7", "view", datetime(2026, 6, 3))],
        "customer_key string, sku string, event_type string, event_ts timestamp",
    )

    result = bought_items(orders, lines, events, datetime(2026, 6, 30))

    expected = spark.createDataFrame([("c1", "s1"), ("c2", "s6")], "customer_key string, sku string")
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
