"""RFM the way analysts compute it outside Spark: pandas (groupby + rank-based bins) and DuckDB SQL (window functions).

Both follow the rules of o2o.gold.rfm exactly, so every customer's values and scores can be compared:
orders placed by the end of the as-of day (UTC) and not cancelled, anonymous sales left out, the
look-back window of `lookback_days` UTC days ending with as_of; recency_days = days from the last
purchase day to as_of, frequency = orders with at least one sale line, monetary = net line amounts of
every order in the window (return receipts subtract), only customers with a purchase in the window.
Scores: 1 + (5 x (rank - 1)) div n with rank = rank(method="min") worst first, i.e. the rank-based
quintile cut with tied values kept in one bin (a plain `qcut` of `rank(method="first")` splits ties
arbitrarily). Money is compared in integer cents.

Out of both: customer_key, recency_days, frequency, monetary_cents, r_score, f_score, m_score.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SCORE_BINS = 5
RESULT_COLUMNS = [
    "customer_key",
    "recency_days",
    "frequency",
    "monetary_cents",
    "r_score",
    "f_score",
    "m_score",
]


def _cents(amount: pa.ChunkedArray) -> pa.ChunkedArray:
    """decimal(12,2) money as exact integer cents."""
    return pc.cast(pc.multiply(amount, pa.scalar(Decimal(100), pa.decimal128(3, 0))), pa.int64())


def _rank_score(values: pd.Series, worst_first_ascending: bool) -> pd.Series:
    rank = values.rank(method="min", ascending=worst_first_ascending).astype("int64")
    return (1 + (SCORE_BINS * (rank - 1)) // len(values)).astype("int64")


def pandas_rfm(orders_path: str, order_lines_path: str, as_of: date, lookback_days: int) -> pd.DataFrame:
    """RFM values and 1-5 scores per customer with pandas (reads the Parquet folders itself)."""
    lines_table = pq.read_table(order_lines_path, columns=["order_id", "quantity", "amount"])
    lines = pd.DataFrame(
        {
            "order_id": lines_table["order_id"].to_pandas(),
            "is_sale": (lines_table["quantity"].to_numpy() > 0),
            "amount_cents": _cents(lines_table["amount"]).to_numpy(),
        }
    )
    orders = pd.read_parquet(orders_path, columns=["order_id", "customer_key", "order_ts", "status"])
    # Spark writes INT96 timestamps (UTC instants), which arrive without a zone.
    if orders["order_ts"].dt.tz is None:
        orders = orders.assign(order_ts=orders["order_ts"].dt.tz_localize("UTC"))
    end = pd.Timestamp(as_of + timedelta(days=1), tz="UTC")
    start = pd.Timestamp(as_of - timedelta(days=lookback_days - 1), tz="UTC")

    amounts = lines.groupby("order_id", sort=False).agg(
        net_cents=("amount_cents", "sum"), is_purchase=("is_sale", "max")
    )
    facts = orders[
        (orders["order_ts"] < end) & (orders["status"] != "cancelled") & orders["customer_key"].notna()
    ].join(amounts, on="order_id", how="inner")
    facts = facts.assign(day=facts["order_ts"].dt.floor("D"))
    facts = facts[facts["day"] >= start]
    values = (
        facts.assign(purchase_day=facts["day"].where(facts["is_purchase"]))
        .groupby("customer_key", sort=False)
        .agg(
            last_purchase_day=("purchase_day", "max"),
            frequency=("is_purchase", "sum"),
            monetary_cents=("net_cents", "sum"),
        )
    )
    values = values[values["frequency"] > 0]
    values = values.assign(
        recency_days=(end - pd.Timedelta(days=1) - values["last_purchase_day"]).dt.days.astype("int64"),
        frequency=values["frequency"].astype("int64"),
    )
    values = values.assign(
        r_score=_rank_score(values["recency_days"], worst_first_ascending=False),
        f_score=_rank_score(values["frequency"], worst_first_ascending=True),
        m_score=_rank_score(values["monetary_cents"], worst_first_ascending=True),
    )
    return values.reset_index()[RESULT_COLUMNS]


RFM_SQL = """
WITH amounts AS (
    SELECT order_id, SUM(amount) AS net_amount, BOOL_OR(quantity > 0) AS is_purchase
    FROM read_parquet($order_lines)
    GROUP BY order_id
), facts AS (
    SELECT o.customer_key, CAST(o.order_ts AS DATE) AS day, a.net_amount, a.is_purchase
    FROM read_parquet($orders) AS o
    JOIN amounts AS a USING (order_id)
    WHERE o.order_ts < CAST($end_day AS TIMESTAMP)
      AND NOT COALESCE(o.status = 'cancelled', FALSE)
      AND o.customer_key IS NOT NULL
), customer_values AS (
    SELECT
        customer_key,
        DATE_DIFF('day', MAX(day) FILTER (WHERE is_purchase), CAST($as_of AS DATE)) AS recency_days,
        COUNT(*) FILTER (WHERE is_purchase) AS frequency,
        CAST(SUM(net_amount) * 100 AS BIGINT) AS monetary_cents
    FROM facts
    WHERE day BETWEEN CAST($start_day AS DATE) AND CAST($as_of AS DATE)
    GROUP BY customer_key
    HAVING COUNT(*) FILTER (WHERE is_purchase) > 0
)
SELECT
    customer_key,
    recency_days,
    frequency,
    monetary_cents,
    1 + (5 * (RANK() OVER (ORDER BY recency_days DESC) - 1)) // COUNT(*) OVER () AS r_score,
    1 + (5 * (RANK() OVER (ORDER BY frequency) - 1)) // COUNT(*) OVER () AS f_score,
    1 + (5 * (RANK() OVER (ORDER BY monetary_cents) - 1)) // COUNT(*) OVER () AS m_score
FROM customer_values
"""


def duckdb_rfm(
    orders_path: str, order_lines_path: str, as_of: date, lookback_days: int, threads: int
) -> pd.DataFrame:
    """RFM values and 1-5 scores per customer with one DuckDB SQL statement over the Parquet folders."""
    with duckdb.connect(config={"threads": threads}) as connection:
        return connection.execute(
            RFM_SQL,
            {
                "orders": f"{orders_path}/*.parquet",
                "order_lines": f"{order_lines_path}/*.parquet",
                "as_of": as_of.isoformat(),
                "start_day": (as_of - timedelta(days=lookback_days - 1)).isoformat(),
                "end_day": (as_of + timedelta(days=1)).isoformat(),
            },
        ).df()[RESULT_COLUMNS]
