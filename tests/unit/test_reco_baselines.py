"""Baselines: global popularity, popularity within the RFM segment, buy again."""

from datetime import datetime

from chispa import assert_approx_df_equality, assert_df_equality

from o2o.reco.baselines import buy_again, global_popular, popularity, segment_popular

CONFIDENCE = "customer_key string, sku string, confidence double"
OUT = "customer_key string, sku string, score double, rank int"


def _confidence(spark):
    # Everyone: s1 = 5, s2 = 4, s3 = 1 (total 10). Segment vip (c1, c2): s2 = 4, s1 = 1 (total 5).
    return spark.createDataFrame(
        [("c1", "s2", 3.0), ("c2", "s2", 1.0), ("c2", "s1", 1.0), ("c3", "s1", 4.0), ("c3", "s3", 1.0)],
        CONFIDENCE,
    )


def test_global_popular_gives_everyone_the_same_top_list(spark):
    popular = popularity(_confidence(spark))
    customers = spark.createDataFrame([("c1",), ("c9",)], "customer_key string")

    result = global_popular(customers, popular, depth=2)

    expected = spark.createDataFrame(
        [("c1", "s1", 0.5, 1), ("c1", "s2", 0.4, 2), ("c9", "s1", 0.5, 1), ("c9", "s2", 0.4, 2)], OUT
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_segment_popular_uses_the_segment_and_falls_back_to_everyone(spark):
    segments = spark.createDataFrame(
        [("c1", "vip"), ("c2", "vip"), ("c3", "new"), ("c4", "vip"), ("c5", "dormant")],
        "customer_key string, segment string",
    )
    popular = popularity(_confidence(spark), segments)
    # c4: vip without own history; c5: a segment nobody in the data is in; c6: no segment at all.
    customers = spark.createDataFrame([("c4",), ("c5",), ("c6",)], "customer_key string")

    result = segment_popular(customers, popular, segments, depth=2)

    expected = spark.createDataFrame(
        [
            ("c4", "s2", 0.8, 1),
            ("c4", "s1", 0.2, 2),
            ("c5", "s1", 0.5, 1),
            ("c5", "s2", 0.4, 2),
            ("c6", "s1", 0.5, 1),
            ("c6", "s2", 0.4, 2),
        ],
        OUT,
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_segment_popular_tops_up_a_short_segment_list_with_everyones(spark):
    segments = spark.createDataFrame(
        [("c1", "vip"), ("c2", "vip"), ("c3", "new")], "customer_key string, segment string"
    )
    popular = popularity(_confidence(spark), segments)
    customers = spark.createDataFrame([("c9",)], "customer_key string")

    # new (c3) touched s1 (0.8 of its weight) and s3 (0.2); everyone's third product is s2 (0.4 overall).
    result = segment_popular(
        customers,
        popular,
        spark.createDataFrame([("c9", "new")], "customer_key string, segment string"),
        depth=3,
    )

    expected = spark.createDataFrame(
        [("c9", "s1", 0.8, 1), ("c9", "s3", 0.2, 2), ("c9", "s2", 0.2 * 0.4, 3)], OUT
    )
    assert_approx_df_equality(result, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_buy_again_ranks_own_purchases_by_units_then_recency(spark):
    events = spark.createDataFrame(
        [
            ("c1", "s1", "purchase", datetime(2026, 6, 1), 1),
            ("c1", "s1", "purchase", datetime(2026, 6, 2), 1),
            ("c1", "s2", "purchase", datetime(2026, 6, 3), 2),  # ties with s1 on units, bought later
            ("c1", "s3", "purchase", datetime(2026, 6, 3), 1),
            ("c1", "s4", "view", datetime(2026, 6, 3), None),  # not a purchase
            ("c1", "s5", "purchase", datetime(2026, 6, 3), -1),  # a return
            ("c2", "s1", "purchase", datetime(2026, 6, 3), 1),  # not asked for
        ],
        "customer_key string, sku string, event_type string, event_ts timestamp, quantity int",
    )
    customers = spark.createDataFrame([("c1",)], "customer_key string")

    result = buy_again(customers, events, depth=2)

    expected = spark.createDataFrame([("c1", "s2", 2.0, 1), ("c1", "s1", 2.0, 2)], OUT)
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
