"""Campaign effect: Welch 95% intervals around treated minus control, on outcomes with a known lift."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from o2o.gold.campaign import campaign_effect, campaign_outcomes

OUTCOMES = "campaign_id string, customer_key string, is_control boolean, purchased double, revenue double"


def _outcomes(spark, campaign_id: str, treated: np.ndarray, control: np.ndarray, revenue_t, revenue_c):
    rows = [
        (campaign_id, f"t{i}", False, float(p), float(r))
        for i, (p, r) in enumerate(zip(treated, revenue_t, strict=True))
    ]
    rows += [
        (campaign_id, f"c{i}", True, float(p), float(r))
        for i, (p, r) in enumerate(zip(control, revenue_c, strict=True))
    ]
    return spark.createDataFrame(rows, OUTCOMES)


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    diff = a.mean() - b.mean()
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return diff - 1.959964 * se, diff + 1.959964 * se


def test_known_lift_is_inside_the_interval_and_no_lift_gives_an_interval_around_zero(spark):
    rng = np.random.default_rng(5)
    n_t, n_c = 3000, 1000
    # Campaign "lift": purchase probability 0.30 treated vs 0.20 control; revenue 40 per buyer plus noise.
    lift_t = (rng.random(n_t) < 0.30).astype(float)
    lift_c = (rng.random(n_c) < 0.20).astype(float)
    rev_lift_t = lift_t * (40 + rng.normal(0, 10, n_t))
    rev_lift_c = lift_c * (40 + rng.normal(0, 10, n_c))
    # Campaign "none": same probability 0.25 in both groups.
    none_t = (rng.random(n_t) < 0.25).astype(float)
    none_c = (rng.random(n_c) < 0.25).astype(float)
    rev_none_t = none_t * (40 + rng.normal(0, 10, n_t))
    rev_none_c = none_c * (40 + rng.normal(0, 10, n_c))
    outcomes = _outcomes(spark, "lift", lift_t, lift_c, rev_lift_t, rev_lift_c).unionByName(
        _outcomes(spark, "none", none_t, none_c, rev_none_t, rev_none_c)
    )

    result = {row["campaign_id"]: row for row in campaign_effect(outcomes).collect()}  # two rows

    lift, none = result["lift"], result["none"]
    assert (lift["treated_customers"], lift["control_customers"]) == (n_t, n_c)
    assert lift["purchase_rate_ci_low"] < 0.10 < lift["purchase_rate_ci_high"]
    assert lift["purchase_rate_ci_low"] > 0  # the lift is detected
    assert lift["revenue_ci_low"] < 0.10 * 40 < lift["revenue_ci_high"]
    assert none["purchase_rate_ci_low"] < 0 < none["purchase_rate_ci_high"]
    assert none["revenue_ci_low"] < 0 < none["revenue_ci_high"]
    # The interval is Welch's, computed independently with numpy.
    assert (lift["purchase_rate_ci_low"], lift["purchase_rate_ci_high"]) == pytest.approx(
        _welch(lift_t, lift_c), abs=1e-6
    )
    assert (none["revenue_ci_low"], none["revenue_ci_high"]) == pytest.approx(
        _welch(rev_none_t, rev_none_c), abs=1e-6
    )
    assert lift["treated_purchase_rate"] == pytest.approx(lift_t.mean())


def test_outcomes_count_only_orders_inside_the_window_and_non_buyers_as_zero(spark):
    targets = spark.createDataFrame(
        [
            ("w", "c1", False, date(2026, 8, 1), date(2026, 8, 14)),
            ("w", "c2", True, date(2026, 8, 1), date(2026, 8, 14)),
            ("w", "c3", False, date(2026, 8, 1), date(2026, 8, 14)),
        ],
        "campaign_id string, customer_key string, is_control boolean, start_date date, end_date date",
    )
    facts = spark.createDataFrame(
        [
            ("c1", date(2026, 8, 1), True, Decimal("30.00")),
            ("c1", date(2026, 8, 14), False, Decimal("-10.00")),  # a return inside the window
            ("c2", date(2026, 7, 31), True, Decimal("99.00")),  # before the start
            ("c2", date(2026, 8, 15), True, Decimal("99.00")),  # after the end
            ("c9", date(2026, 8, 2), True, Decimal("50.00")),  # not listed
        ],
        "customer_key string, day date, is_purchase boolean, net_amount decimal(16,2)",
    )

    result = {
        row["customer_key"]: (row["is_control"], row["purchased"], row["revenue"])
        for row in campaign_outcomes(targets, facts).collect()
    }

    assert result == {"c1": (False, 1.0, 20.0), "c2": (True, 0.0, 0.0), "c3": (False, 0.0, 0.0)}
