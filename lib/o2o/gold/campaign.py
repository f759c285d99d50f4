"""Campaign effect: purchase rate and revenue per customer, treated vs hashed control, with Welch 95% intervals."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

Z_95 = 1.959963984540054


def campaign_outcomes(targets: DataFrame, facts: DataFrame) -> DataFrame:
    """Per campaign and listed customer: did they buy, and their net revenue, between start_date and end_date.

    `targets` holds campaign_id, customer_key, is_control, start_date, end_date (inclusive UTC days);
    `facts` are order facts (rfm.order_facts). Customers with no order in the window count with 0.
    Out: campaign_id, customer_key, is_control, purchased (0/1), revenue (double).
    """
    window_facts = facts.select(F.col("customer_key").alias("buyer_key"), "day", "is_purchase", "net_amount")
    in_window = targets.join(
        window_facts,
        (F.col("customer_key") == F.col("buyer_key"))
        & F.col("day").between(F.col("start_date"), F.col("end_date")),
        "left",
    )
    return in_window.groupBy("campaign_id", "customer_key", "is_control").agg(
        F.max(F.when(F.col("is_purchase"), F.lit(1.0)).otherwise(F.lit(0.0))).alias("purchased"),
        F.coalesce(F.sum("net_amount"), F.lit(0)).cast("double").alias("revenue"),
    )


def _ci(
    diff: Column, treated_var: Column, treated_n: Column, control_var: Column, control_n: Column, bound: float
) -> Column:
    standard_error = F.sqrt(treated_var / treated_n + control_var / control_n)
    return diff + F.lit(bound * Z_95) * standard_error


def campaign_effect(outcomes: DataFrame) -> DataFrame:
    """Per campaign: n, purchase rate and revenue per customer for treated and control, treated minus control,
    and its 95% interval (normal approximation with Welch's unpooled standard error, sample variances).

    Intervals are null when a group has fewer than two customers. Out: campaign_id, treated_customers,
    control_customers, treated_/control_purchase_rate, purchase_rate_diff, purchase_rate_ci_low/high,
    treated_/control_revenue_per_customer, revenue_diff, revenue_ci_low/high.
    """
    treated = ~F.col("is_control")
    control = F.col("is_control")

    def of(group: Column, value: Column) -> Column:
        return F.when(group, value)

    stats = outcomes.groupBy("campaign_id").agg(
        F.count(of(treated, F.lit(1))).alias("treated_customers"),
        F.count(of(control, F.lit(1))).alias("control_customers"),
        F.avg(of(treated, F.col("purchased"))).alias("treated_purchase_rate"),
        F.avg(of(control, F.col("purchased"))).alias("control_purchase_rate"),
        F.var_samp(of(treated, F.col("purchased"))).alias("treated_purchase_var"),
        F.var_samp(of(control, F.col("purchased"))).alias("control_purchase_var"),
        F.avg(of(treated, F.col("revenue"))).alias("treated_revenue_per_customer"),
        F.avg(of(control, F.col("revenue"))).alias("control_revenue_per_customer"),
        F.var_samp(of(treated, F.col("revenue"))).alias("treated_revenue_var"),
        F.var_samp(of(control, F.col("revenue"))).alias("control_revenue_var"),
    )
    enough = (F.col("treated_customers") > 1) & (F.col("control_customers") > 1)
    columns = ["campaign_id", "treated_customers", "control_customers"]
    for metric, treated_mean, control_mean, variance in (
        ("purchase_rate", "treated_purchase_rate", "control_purchase_rate", "purchase_var"),
        ("revenue", "treated_revenue_per_customer", "control_revenue_per_customer", "revenue_var"),
    ):
        diff = F.col(treated_mean) - F.col(control_mean)
        variances = (
            F.col(f"treated_{variance}"),
            F.col("treated_customers"),
            F.col(f"control_{variance}"),
            F.col("control_customers"),
        )
        columns += [
            treated_mean,
            control_mean,
            diff.alias(f"{metric}_diff"),
            F.when(enough, _ci(diff, *variances, bound=-1.0)).alias(f"{metric}_ci_low"),
            F.when(enough, _ci(diff, *variances, bound=1.0)).alias(f"{metric}_ci_high"),
        ]
    return stats.select(*columns)
