"""Turn a suite into GX expectations on one frame: derived columns for cross-table and table-level rules, example rows."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from o2o.quality.suites import Check, Suite

DERIVED_PREFIX = "_dq_"
# A GX expectation may check only the rows a Spark SQL predicate selects: row_condition: "channel <> 'pos'".
ROW_FILTER = ("row_condition", "condition_parser")
# Custom checks whose derived column reads only its own row (or none): cheap to recompute per GX query.
ROW_LOCAL = frozenset({"fresh", "not_nan", "rows_satisfy", "volume_within_band_of_previous_run"})

HINTS = {
    "column_values_to_not_be_null": "rows without a value: check the source feed and the silver mapping of this column",
    "column_values_to_be_unique": "duplicate keys: check deduplication (re-delivered files, newest-record-wins) before the write",
    "compound_columns_to_be_unique": "duplicate keys: check deduplication and the join that builds these rows",
    "column_values_to_be_in_set": "values outside the vocabulary: check the mapping of source codes in the silver stage",
    "column_values_to_be_between": "values out of range: check the source rows and the quarantine rules for this column",
    "table_row_count_to_be_between": "row count: check the landing folder and the stage's input versions in ops.pipeline_runs",
    "references": "orphan keys: check that the referenced table was written first and that identity/key mapping ran",
    "fresh": "stale data: check that the feed still delivers files to landing and that the ingest ran",
    "volume_within_band_of_previous_run": "volume change: compare with the previous successful run in ops.pipeline_runs",
    "quarantine_share_below": "too many rejected records: read silver.quarantine grouped by feed and reason",
    "exactly_k_per_key": "wrong number of rows per key: check the ranking/limit step that produces them",
    "not_previously_purchased": "already-bought items recommended: check the purchase exclusion in the reco stage",
    "not_nan": "NaN values: check the model scores (training diverged or a cold-start user/item)",
    "rows_satisfy": "rows break a row rule: check the transform that computes these columns",
}


@dataclass(frozen=True)
class Inputs:
    """Everything a suite needs besides the frame: read at the edge by the gate, passed in as plain values."""

    as_of: date | None = None
    previous_rows: int | None = None
    related: dict[str, DataFrame] = field(default_factory=dict)
    feed_rows: DataFrame | None = None  # (feed, rows): bronze row count per feed, for the quarantine share


@dataclass(frozen=True)
class Planned:
    """A check ready for GX: the expectation to run on the derived frame, its threshold text, how to find bad rows."""

    check: Check
    expectation_type: str
    kwargs: dict[str, Any]
    description: str
    threshold: str
    failing_rows: Callable[[DataFrame], DataFrame] | None = None


@dataclass(frozen=True)
class Plan:
    """The frame GX validates (input columns plus derived _dq_ columns) and the planned checks."""

    frame: DataFrame
    planned: tuple[Planned, ...]
    skipped: tuple[str, ...]
    derived_columns: tuple[str, ...]
    # Every derived column is an expression on its own row (no join, no window over other rows).
    row_local: bool = True


def plan_suite(df: DataFrame, suite: Suite, inputs: Inputs) -> Plan:
    """Add the derived columns every custom check needs and map each check to one GX expectation."""
    frame = df
    planned: list[Planned] = []
    skipped = [f"{name}: switched off by config" for name in suite.disabled]
    derived: list[str] = []
    for check in suite.checks:
        if not check.is_custom:
            planned.append(_native(check))
            continue
        frame, item, reason = _CUSTOM[check.expect](frame, check, inputs)
        if item is None:
            skipped.append(f"{check.name}: {reason}")
            continue
        if item.kwargs.get("column", "").startswith(DERIVED_PREFIX):
            derived.append(item.kwargs["column"])
        planned.append(item)
    needed = _needed_columns(frame, suite, planned)
    if needed is not None:
        frame = frame.select(*needed)
    return Plan(
        frame=frame,
        planned=tuple(planned),
        skipped=tuple(skipped),
        derived_columns=tuple(derived),
        row_local=all(item.check.expect in ROW_LOCAL for item in planned if item.check.is_custom),
    )


def _needed_columns(frame: DataFrame, suite: Suite, planned: list[Planned]) -> list[str] | None:
    """The columns the validation and its example rows read, in frame order; None keeps them all.

    The gate materialises its frame once for all of GX's queries: a bronze frame carries each record's raw
    line, which no check reads. With `example_columns` set, only those, the checked columns and the derived
    ones are kept. Without them (examples show every column), or when a check filters rows by an
    expression GX evaluates itself (`row_condition`), nothing is dropped.
    """
    if not suite.example_columns or any("row_condition" in item.kwargs for item in planned):
        return None
    wanted = set(suite.example_columns)
    for item in planned:
        for params in (item.kwargs, item.check.params):
            for name in ("column", "column_A", "column_B", "column_list", "key"):
                value = params.get(name)
                wanted.update([value] if isinstance(value, str) else value or [])
        if item.check.column:
            wanted.add(item.check.column)
    return [column for column in frame.columns if column in wanted or column.startswith(DERIVED_PREFIX)]


# ---------------------------------------------------------------- plain GX expectations


def _native(check: Check) -> Planned:
    params = dict(check.params)
    return Planned(
        check=check,
        expectation_type=check.expect,
        kwargs=params,
        description=check.description or "",
        threshold=_threshold(check.expect, params),
        failing_rows=_native_failing_rows(check.expect, params),
    )


def _threshold(expect: str, params: dict[str, Any]) -> str:
    rule = _rule(expect, params)
    return f"{rule} where {params['row_condition']}" if params.get("row_condition") else rule


def _rule(expect: str, params: dict[str, Any]) -> str:
    mostly = params.get("mostly")
    share = f" in at least {mostly:.1%} of rows" if mostly is not None and mostly < 1 else ""
    if "value_set" in params:
        verb = "not in" if "not_be_in_set" in expect else "in"
        return f"values {verb} {{{', '.join(map(str, params['value_set']))}}}{share}"
    if "min_value" in params or "max_value" in params:
        low = params.get("min_value")
        high = params.get("max_value")
        bounds = " and ".join(
            part
            for part in (
                f"{'>' if params.get('strict_min') else '>='} {low}" if low is not None else "",
                f"{'<' if params.get('strict_max') else '<='} {high}" if high is not None else "",
            )
            if part
        )
        what = (
            "row count"
            if expect.startswith("table_row_count")
            else expect.split("_to_be")[0].replace("_", " ")
        )
        return f"{what} {bounds}{share}"
    if "regex" in params:
        return f"values match /{params['regex']}/{share}"
    if expect.endswith("not_be_null"):
        return f"no nulls{share}" if not share else f"not null{share}"
    if expect.endswith("to_be_null"):
        return f"all null{share}"
    if "unique" in expect:
        return (
            "every value unique"
            if "column" in params
            else f"each ({', '.join(params.get('column_list', []))}) once"
        )
    shown = {k: v for k, v in params.items() if k not in ("column", "column_list", *ROW_FILTER)}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or expect


def _native_failing_rows(expect: str, params: dict[str, Any]) -> Callable[[DataFrame], DataFrame] | None:
    rows = _rows_breaking(expect, params)
    condition = params.get("row_condition")
    if rows is None or not condition:
        return rows
    # The rows GX checks (those matching row_condition, a Spark SQL predicate) are the only ones that can fail.
    return lambda frame: rows(frame.where(F.expr(condition)))


def _rows_breaking(expect: str, params: dict[str, Any]) -> Callable[[DataFrame], DataFrame] | None:
    column = params.get("column")
    if expect in ("column_values_to_be_unique",) and column:
        return lambda frame: _duplicated(frame, [column])
    if expect in (
        "compound_columns_to_be_unique",
        "select_column_values_to_be_unique_within_record",
    ) and params.get("column_list"):
        return lambda frame: _duplicated(frame, list(params["column_list"]))
    condition = _failing_condition(expect, params)
    if condition is None:
        return None
    return lambda frame: frame.where(condition)


def _failing_condition(expect: str, params: dict[str, Any]) -> Column | None:
    column = params.get("column")
    if not column:
        return None
    value = F.col(column)
    if expect == "column_values_to_not_be_null":
        return value.isNull()
    if expect == "column_values_to_be_null":
        return value.isNotNull()
    if expect == "column_values_to_be_in_set":
        return value.isNotNull() & ~value.isin(list(params["value_set"]))
    if expect == "column_values_to_not_be_in_set":
        return value.isin(list(params["value_set"]))
    if expect == "column_values_to_match_regex":
        return value.isNotNull() & ~value.rlike(params["regex"])
    if expect == "column_values_to_not_match_regex":
        return value.rlike(params["regex"])
    if expect == "column_values_to_be_between":
        parts = []
        if params.get("min_value") is not None:
            low = F.lit(params["min_value"])
            parts.append(value <= low if params.get("strict_min") else value < low)
        if params.get("max_value") is not None:
            high = F.lit(params["max_value"])
            parts.append(value >= high if params.get("strict_max") else value > high)
        if not parts:
            return None
        condition = parts[0]
        for part in parts[1:]:
            condition = condition | part
        return value.isNotNull() & condition
    return None


def _duplicated(frame: DataFrame, columns: list[str]) -> DataFrame:
    """Rows whose key occurs more than once, with the number of copies."""
    copies = F.count(F.lit(1)).over(Window.partitionBy(*columns))
    return frame.withColumn("_dq_copies", copies).where(F.col("_dq_copies") > 1).orderBy(*columns)


# ---------------------------------------------------------------- o2o checks (derived columns, then GX)


def _derived_name(*parts: str) -> str:
    return DERIVED_PREFIX + re.sub(r"\W+", "_", "_".join(parts)).strip("_").lower()


def _must_be_null(check: Check, column: str, description: str, threshold: str) -> Planned:
    """A derived column that holds the offending value on bad rows and null elsewhere: GX checks it is all null."""
    return Planned(
        check=check,
        expectation_type="column_values_to_be_null",
        kwargs={"column": column},
        description=description,
        threshold=threshold,
        failing_rows=lambda frame: frame.where(F.col(column).isNotNull()),
    )


def _references(frame: DataFrame, check: Check, inputs: Inputs):
    target, key, column = check.params["table"], check.params["key"], check.column
    if target not in inputs.related:
        return frame, None, f"{target} is not available (not passed in `related` and not in the lake yet)"
    out = _derived_name("orphan", column, "in", target)
    hit = f"{out}_hit"
    keys = inputs.related[target].where(F.col(key).isNotNull()).select(F.col(key).alias(hit)).distinct()
    frame = (
        frame.join(keys, F.col(column) == F.col(hit), "left")
        .withColumn(
            out, F.when(F.col(column).isNotNull() & F.col(hit).isNull(), F.col(column).cast("string"))
        )
        .drop(hit)
    )
    text = f"{column} references {target}.{key}: {out} holds orphan keys and must be null"
    return (
        frame,
        _must_be_null(check, out, check.description or text, f"every {column} found in {target}.{key}"),
        "",
    )


def _fresh(frame: DataFrame, check: Check, inputs: Inputs):
    if inputs.as_of is None:
        return frame, None, "no as-of date given"
    column, max_age = check.column, check.params["max_age_days"]
    source = F.expr(check.params["expr"]) if check.params.get("expr") else F.col(column)
    out = _derived_name("age_days", column)
    frame = frame.withColumn(out, F.datediff(F.lit(inputs.as_of), F.to_date(source)))
    planned = Planned(
        check=check,
        expectation_type="column_min_to_be_between",
        kwargs={"column": out, "max_value": max_age},
        description=check.description
        or f"freshness: the newest {column} is at most {max_age} days before the as-of date ({out} = days before as-of)",
        threshold=f"newest {column} at most {max_age} days before as-of {inputs.as_of}",
        failing_rows=lambda derived: derived.orderBy(F.col(out).asc_nulls_last()),
    )
    return frame, planned, ""


def _volume(frame: DataFrame, check: Check, inputs: Inputs):
    if inputs.previous_rows is None:
        return frame, None, "no rows of this table in a previous successful run (ops.pipeline_runs)"
    band = float(check.params.get("band", 0.5))
    low = math.floor(inputs.previous_rows * (1 - band))
    high = math.ceil(inputs.previous_rows * (1 + band))
    planned = Planned(
        check=check,
        expectation_type="table_row_count_to_be_between",
        kwargs={"min_value": low, "max_value": high},
        description=check.description
        or f"volume: row count within ±{band:.0%} of the previous successful run ({inputs.previous_rows} rows)",
        threshold=f"row count between {low} and {high} (previous run {inputs.previous_rows} ±{band:.0%})",
    )
    return frame, planned, ""


def _quarantine_share(frame: DataFrame, check: Check, inputs: Inputs):
    if inputs.feed_rows is None:
        return frame, None, "no bronze row counts per feed available"
    feed = check.column or "feed"
    max_share = float(check.params["max_share"])
    out = _derived_name("quarantine_share")
    per_feed = Window.partitionBy(feed)
    frame = (
        frame.join(
            F.broadcast(
                inputs.feed_rows.select(F.col("feed").alias(feed), F.col("rows").alias("_dq_feed_rows"))
            ),
            feed,
            "left",
        )
        .withColumn(out, F.count(F.lit(1)).over(per_feed) / F.col("_dq_feed_rows"))
        .drop("_dq_feed_rows")
    )
    planned = Planned(
        check=check,
        expectation_type="column_max_to_be_between",
        kwargs={"column": out, "max_value": max_share},
        description=check.description
        or f"quarantine share per feed (quarantined / bronze rows) at most {max_share:.1%}; {out} = share of the row's feed",
        threshold=f"quarantined share of every feed <= {max_share:.2%}",
        failing_rows=lambda derived: (
            derived.where(F.col(out) > max_share).select(feed, out).distinct().orderBy(F.desc(out))
        ),
    )
    return frame, planned, ""


def _exactly_k(frame: DataFrame, check: Check, inputs: Inputs):
    keys, k = list(check.params["key"]), int(check.params["k"])
    out = _derived_name("rows_per", *keys)
    count = F.count(F.lit(1)).over(Window.partitionBy(*keys))
    frame = frame.withColumn(out, F.when(count != k, count))
    text = (
        f"exactly {k} rows per ({', '.join(keys)}); {out} holds the count where it differs and must be null"
    )
    return (
        frame,
        _must_be_null(check, out, check.description or text, f"exactly {k} rows per {', '.join(keys)}"),
        "",
    )


def _not_purchased(frame: DataFrame, check: Check, inputs: Inputs):
    needed = ("silver.order_lines", "silver.orders")
    missing = [name for name in needed if name not in inputs.related]
    if missing:
        return frame, None, f"{', '.join(missing)} not available"
    column, customer = check.column, check.params["customer_column"]
    out = _derived_name("already_purchased", column)
    hit = f"{out}_hit"
    purchases = (
        inputs.related["silver.order_lines"]
        .where(F.col("quantity") > 0)
        .select("order_id", F.col("sku").alias("_dq_sku"))
        .join(
            inputs.related["silver.orders"]
            .where(F.col("customer_key").isNotNull())
            .select("order_id", F.col("customer_key").alias("_dq_customer")),
            "order_id",
        )
        .select("_dq_customer", "_dq_sku")
        .distinct()
        .withColumn(hit, F.lit(True))
    )
    frame = (
        frame.join(
            purchases,
            (F.col(customer) == F.col("_dq_customer")) & (F.col(column) == F.col("_dq_sku")),
            "left",
        )
        .withColumn(out, F.when(F.col(hit), F.col(column).cast("string")))
        .drop("_dq_customer", "_dq_sku", hit)
    )
    text = f"no {column} the {customer} already bought (silver.order_lines with quantity > 0); {out} must be null"
    return frame, _must_be_null(check, out, check.description or text, f"no already-purchased {column}"), ""


def _not_nan(frame: DataFrame, check: Check, inputs: Inputs):
    column = check.column
    out = _derived_name("nan", column)
    frame = frame.withColumn(out, F.when(F.isnan(F.col(column)), F.lit("NaN")))
    return (
        frame,
        _must_be_null(
            check, out, check.description or f"{column} is a number, never NaN", f"no NaN in {column}"
        ),
        "",
    )


def _rows_satisfy(frame: DataFrame, check: Check, inputs: Inputs):
    condition = check.params["condition"]
    out = _derived_name("violates", check.name)
    shown = F.col(check.column).cast("string") if check.column else F.lit("violated")
    # A null outcome (a missing operand) is not counted as a violation: null checks cover missing values.
    frame = frame.withColumn(out, F.when(~F.coalesce(F.expr(condition), F.lit(True)), shown))
    return (
        frame,
        _must_be_null(check, out, check.description or f"every row satisfies: {condition}", condition),
        "",
    )


_CUSTOM = {
    "references": _references,
    "fresh": _fresh,
    "volume_within_band_of_previous_run": _volume,
    "quarantine_share_below": _quarantine_share,
    "exactly_k_per_key": _exactly_k,
    "not_previously_purchased": _not_purchased,
    "not_nan": _not_nan,
    "rows_satisfy": _rows_satisfy,
}
