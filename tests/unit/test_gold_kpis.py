"""Channel KPIs per day and channel on a hand-built order history."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from chispa import assert_df_equality

from o2o.gold.kpis import channel_kpis
from o2o.gold.rfm import order_facts


def test_channel_kpis_by_hand(spark):
    orders = spark.createDataFrame(
        [
            ("o0", "web", None, "c1", datetime(2026, 2, 20, 9), "delivered", "delivery"),  # before the window
            (
                "o1",
                "pos",
                "S001",
                "c1",
                datetime(2026, 3, 1, 9),
                "completed",
                "in_store",
            ),  # c1 online -> offline
            (
                "o2",
                "pos",
                "S001",
                None,
                datetime(2026, 3, 1, 10),
                "completed",
                "in_store",
            ),  # anonymous, with a return
            ("o3", "pos", "S001", "c2", datetime(2026, 3, 1, 11), "completed", "in_store"),  # c2 new in store
            (
                "o4",
                "app",
                "S001",
                "c2",
                datetime(2026, 3, 2, 9),
                "completed",
                "pick_up_in_store",
            ),  # c2 offline -> online
            ("o5", "app", None, "c3", datetime(2026, 3, 2, 10), "delivered", "delivery"),  # c3 new online
            ("o6", "app", None, "c3", datetime(2026, 3, 2, 11), "cancelled", "delivery"),
            ("r1", "pos", "S001", "c1", datetime(2026, 3, 3, 9), "completed", "in_store"),  # return only
        ],
        "order_id string, channel string, store_id string, customer_key string, order_ts timestamp, status string, fulfilment string",
    )
    lines = spark.createDataFrame(
        [
            ("o0", 1, "a", 1, Decimal("10.00")),
            ("o1", 1, "a", 2, Decimal("20.00")),
            ("o2", 1, "b", 3, Decimal("30.00")),
            ("o2", 2, "b", -1, Decimal("-5.00")),
            ("o3", 1, "c", 1, Decimal("15.00")),
            ("o4", 1, "c", 1, Decimal("25.00")),
            ("o5", 1, "d", 1, Decimal("35.00")),
            ("o6", 1, "d", 1, Decimal("100.00")),
            ("r1", 1, "a", -1, Decimal("-4.00")),
        ],
        "order_id string, line_no int, sku string, quantity int, amount decimal(12,2)",
    )
    as_of = date(2026, 3, 3)

    result = channel_kpis(order_facts(orders, lines, as_of), as_of, lookback_days=3)

    expected = spark.createDataFrame(
        [
            (
                as_of,
                date(2026, 3, 1),
                "pos",
                Decimal("60.00"),
                Decimal("65.00"),
                Decimal("5.00"),
                3,
                Decimal("21.67"),
                2,
                1,
                0.0769,
                0.0,
                0.5,
                1,
                0,
            ),
            (
                as_of,
                date(2026, 3, 2),
                "app",
                Decimal("60.00"),
                Decimal("60.00"),
                Decimal("0.00"),
                2,
                Decimal("30.00"),
                2,
                1,
                0.0,
                0.5,
                0.5,
                0,
                1,
            ),
            (
                as_of,
                date(2026, 3, 3),
                "pos",
                Decimal("-4.00"),
                Decimal("0.00"),
                Decimal("4.00"),
                0,
                None,
                0,
                0,
                None,
                None,
                None,
                0,
                0,
            ),
        ],
        "as_of date, day date, channel string, sales decimal(16,2), gross_sales decimal(16,2), returns decimal(16,2), "
        "orders long, aov decimal(16,2), active_customers long, new_customers long, return_rate double, "
        "pickup_share double, omnichannel_customer_share double, online_to_offline long, offline_to_online long",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_customers_count_once_per_day_and_channel_however_many_orders(spark):
    """Two store orders of one customer on one day: one active customer, one omnichannel, one online-to-offline."""
    orders = spark.createDataFrame(
        [
            (
                "w1",
                "web",
                None,
                "c1",
                datetime(2026, 3, 1, 9),
                "delivered",
                "delivery",
            ),  # c1's first purchase
            (
                "p1",
                "pos",
                "S001",
                "c1",
                datetime(2026, 3, 2, 9),
                "completed",
                "in_store",
            ),  # c1 online -> offline
            ("p2", "pos", "S001", "c1", datetime(2026, 3, 2, 10), "completed", "in_store"),
            ("p3", "pos", "S001", "c2", datetime(2026, 3, 2, 11), "completed", "in_store"),  # c2 new in store
            ("p4", "pos", "S001", "c2", datetime(2026, 3, 2, 12), "completed", "in_store"),
            ("p5", "pos", "S001", None, datetime(2026, 3, 2, 13), "completed", "in_store"),  # anonymous
        ],
        "order_id string, channel string, store_id string, customer_key string, order_ts timestamp, status string, fulfilment string",
    )
    amounts = {"w1": "10.00", "p1": "20.00", "p2": "30.00", "p3": "5.00", "p4": "5.00", "p5": "7.00"}
    lines = spark.createDataFrame(
        [(order_id, 1, "a", 1, Decimal(amount)) for order_id, amount in amounts.items()],
        "order_id string, line_no int, sku string, quantity int, amount decimal(12,2)",
    )
    as_of = date(2026, 3, 2)

    result = channel_kpis(order_facts(orders, lines, as_of), as_of, lookback_days=2)

    expected = spark.createDataFrame(
        [
            # c1 is not yet omnichannel on 03-01: 0 of 1 active customers.
            (
                as_of,
                date(2026, 3, 1),
                "web",
                Decimal("10.00"),
                Decimal("10.00"),
                Decimal("0.00"),
                1,
                Decimal("10.00"),
                1,
                1,
                0.0,
                0.0,
                0.0,
                0,
                0,
            ),
            # 5 orders (anonymous included) by 2 known customers; c2 new; c1 omnichannel and online -> offline.
            (
                as_of,
                date(2026, 3, 2),
                "pos",
                Decimal("67.00"),
                Decimal("67.00"),
                Decimal("0.00"),
                5,
                Decimal("13.40"),
                2,
                1,
                0.0,
                0.0,
                0.5,
                1,
                0,
            ),
        ],
        "as_of date, day date, channel string, sales decimal(16,2), gross_sales decimal(16,2), returns decimal(16,2), "
        "orders long, aov decimal(16,2), active_customers long, new_customers long, return_rate double, "
        "pickup_share double, omnichannel_customer_share double, online_to_offline long, offline_to_online long",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
