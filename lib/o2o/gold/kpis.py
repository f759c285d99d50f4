"""Channel and O2O KPIs per UTC day and channel: sales, orders, AOV, customers, returns, pick-up, omnichannel, migration."""

from __future__ import annotations

from datetime import date, timedelta

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from o2o.contracts import BIG_MONEY
from o2o.gold.rfm import PICK_UP


def customer_milestones(facts: DataFrame) -> DataFrame:
    """Per purchase order of an identified customer: is it the first purchase ever, the first in its channel group,
    the group of the customer's first purchase, and the day the customer had bought both online and offline.

    Out: customer_key, order_id, is_first_purchase, is_first_in_group, first_group, omnichannel_since.
    """
    purchases = facts.where(F.col("is_purchase") & F.col("customer_key").isNotNull())
    ordered = Window.partitionBy("customer_key").orderBy("order_ts", "order_id")
    ordered_in_group = Window.partitionBy("customer_key", "channel_group").orderBy("order_ts", "order_id")
    whole = Window.partitionBy("customer_key")
    first_online = F.min(F.when(F.col("channel_group") == "online", F.col("day"))).over(whole)
    first_offline = F.min(F.when(F.col("channel_group") == "offline", F.col("day"))).over(whole)
    return purchases.select(
        "customer_key",
        "order_id",
        (F.row_number().over(ordered) == 1).alias("is_first_purchase"),
        (F.row_number().over(ordered_in_group) == 1).alias("is_first_in_group"),
        F.first("channel_group")
        .over(ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing))
        .alias("first_group"),
        # greatest() skips nulls: a customer who never bought in one group is not omnichannel at all.
        F.when(
            first_online.isNotNull() & first_offline.isNotNull(), F.greatest(first_online, first_offline)
        ).alias("omnichannel_since"),
    )


def channel_kpis(facts: DataFrame, as_of: date, lookback_days: int) -> DataFrame:
    """One row per UTC day and channel with orders in the look-back window ending on `as_of`.

    `facts` are order facts (rfm.order_facts) of all history up to as_of, so "new" and "first" mean ever.
    sales = gross_sales - returns (anonymous sales included); orders = purchase orders; aov = gross_sales /
    orders; return_rate = returns / gross_sales; pickup_share = pick-up-in-store orders / orders;
    omnichannel_customer_share = active customers who by that day had bought both online and in store;
    online_to_offline / offline_to_online = customers whose first purchase was in the other channel group
    making their first purchase in this one.
    """
    start = as_of - timedelta(days=lookback_days - 1)
    facts = facts.where(F.col("day") <= F.lit(as_of))
    milestones = customer_milestones(facts)
    purchase = F.col("is_purchase")
    known = F.col("customer_key").isNotNull()
    purchase_by_known = purchase & known

    def flag(condition: Column) -> Column:
        # Null conditions (anonymous orders have no milestones) are false.
        return F.max(F.coalesce(condition, F.lit(False)))

    # Two steps instead of countDistinct: first one row per day, channel and customer (the facts and their
    # milestones are both partitioned by customer, so this step shuffles nothing), then a sum of its flags.
    # Several distinct counts in one aggregation expand every row once per count.
    per_customer = (
        facts.where(F.col("day") >= F.lit(start))
        .join(milestones, ["customer_key", "order_id"], "left")
        .groupBy("day", "channel", "customer_key")
        .agg(
            F.sum(F.when(purchase, F.col("gross_amount")).otherwise(F.lit(0))).alias("gross_sales"),
            F.sum("returned_amount").alias("returns"),
            F.count(F.when(purchase, F.col("order_id"))).alias("orders"),
            F.count(F.when(purchase & (F.col("fulfilment") == PICK_UP), F.col("order_id"))).alias(
                "pickup_orders"
            ),
            F.count(F.when(F.col("is_first_purchase"), F.col("order_id"))).alias("new_customers"),
            flag(purchase_by_known).alias("active"),
            flag(purchase_by_known & (F.col("omnichannel_since") <= F.col("day"))).alias("omnichannel"),
            flag(
                F.col("is_first_in_group")
                & (F.col("channel_group") == "offline")
                & (F.col("first_group") == "online")
            ).alias("online_to_offline"),
            flag(
                F.col("is_first_in_group")
                & (F.col("channel_group") == "online")
                & (F.col("first_group") == "offline")
            ).alias("offline_to_online"),
        )
    )

    def customers(column: str) -> Column:
        return F.count(F.when(F.col(column), F.lit(1)))

    daily = per_customer.groupBy("day", "channel").agg(
        F.sum("gross_sales").cast(BIG_MONEY).alias("gross_sales"),
        F.sum("returns").cast(BIG_MONEY).alias("returns"),
        F.sum("orders").alias("orders"),
        F.sum("pickup_orders").alias("pickup_orders"),
        customers("active").alias("active_customers"),
        F.sum("new_customers").alias("new_customers"),
        customers("omnichannel").alias("omnichannel_customers"),
        customers("online_to_offline").alias("online_to_offline"),
        customers("offline_to_online").alias("offline_to_online"),
    )
    return daily.select(
        F.lit(as_of).alias("as_of"),
        "day",
        "channel",
        (F.col("gross_sales") - F.col("returns")).cast(BIG_MONEY).alias("sales"),
        "gross_sales",
        "returns",
        F.col("orders").cast("long").alias("orders"),
        F.when(F.col("orders") > 0, F.col("gross_sales") / F.col("orders")).cast(BIG_MONEY).alias("aov"),
        F.col("active_customers").cast("long").alias("active_customers"),
        F.col("new_customers").cast("long").alias("new_customers"),
        F.when(
            F.col("gross_sales") > 0,
            F.round(F.col("returns").cast("double") / F.col("gross_sales").cast("double"), 4),
        ).alias("return_rate"),
        F.when(F.col("orders") > 0, F.round(F.col("pickup_orders") / F.col("orders"), 4)).alias(
            "pickup_share"
        ),
        F.when(
            F.col("active_customers") > 0,
            F.round(F.col("omnichannel_customers") / F.col("active_customers"), 4),
        ).alias("omnichannel_customer_share"),
        F.col("online_to_offline").cast("long").alias("online_to_offline"),
        F.col("offline_to_online").cast("long").alias("offline_to_online"),
    )
