"""Publishing stage: top-N products per customer from the latest ALS model, segment favourites for cold start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, time, timedelta

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, Row, SparkSession, Window

from o2o import lake, quality
from o2o.config import Config
from o2o.contracts import RECO
from o2o.errors import UsageError
from o2o.frames import checkpointed, local_frame, union_all
from o2o.reco import als, baselines, features
from o2o.runs import StageResult

STAGE = "recommend"
TABLE = "gold.recommendations"
MODELS_TABLE = "ops.models"
INPUTS = (
    "silver.interactions",
    "silver.orders",
    "silver.order_lines",
    "silver.products",
    "silver.customers",
    "gold.customer_rfm",
)
EXCLUDED_ORDER_STATUSES = ("cancelled",)


class NoModel(UsageError, RuntimeError):
    """No trained model is recorded in ops.models for the requested date."""


def bought_items(
    orders: DataFrame | None, order_lines: DataFrame | None, interactions: DataFrame, end: datetime
) -> DataFrame:
    """customer_key, sku a customer already bought before `end`: purchase events, plus lines of their orders when given.

    Cancelled orders, anonymous orders and return lines do not count.
    """
    bought = interactions.where(
        (F.col("event_type") == "purchase")
        & (F.col("event_ts") < F.lit(end))
        & F.col("customer_key").isNotNull()
    ).select("customer_key", "sku")
    if orders is not None and order_lines is not None:
        bought = bought.unionByName(
            order_lines.where(F.col("quantity") > 0)
            .join(
                orders.where(
                    F.col("customer_key").isNotNull()
                    & (F.col("order_ts") < F.lit(end))
                    & ~F.col("status").isin(*EXCLUDED_ORDER_STATUSES)
                ).select("order_id", "customer_key"),
                "order_id",
            )
            .select("customer_key", "sku")
        )
    return bought.distinct()


def assemble(
    population: DataFrame,
    known_customers: DataFrame,
    als_candidates: DataFrame,
    popular_candidates: DataFrame,
    bought: DataFrame | None,
    catalogue: DataFrame | None,
    top_n: int,
) -> DataFrame:
    """Final lists: customer_key, rank 1..top_n, sku, score, reason.

    Customers the model knows get its items (reason 'als'); the rest of `population` gets its
    segment's popular products (reason 'segment_popular'). Items in `bought` (when given) and
    SKUs missing from `catalogue` (when given) are removed before ranking; a NaN or null score never ranks.
    """
    customers = population.select("customer_key").distinct()
    known = known_customers.select("customer_key").distinct()
    candidates = (
        als_candidates.join(customers, "customer_key", "left_semi")
        .join(known, "customer_key", "left_semi")
        .select("customer_key", "sku", "score", F.lit("als").alias("reason"))
        .unionByName(
            popular_candidates.join(
                customers.join(known, "customer_key", "left_anti"), "customer_key", "left_semi"
            ).select("customer_key", "sku", "score", F.lit("segment_popular").alias("reason"))
        )
        .where(F.col("score").isNotNull() & ~F.isnan("score"))
    )
    if bought is not None:
        candidates = candidates.join(
            bought.select("customer_key", "sku"), ["customer_key", "sku"], "left_anti"
        )
    if catalogue is not None:
        candidates = candidates.join(F.broadcast(catalogue.select("sku").distinct()), "sku", "left_semi")
    order = Window.partitionBy("customer_key").orderBy(F.col("score").desc(), "sku")
    return (
        candidates.withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= top_n)
        .select(
            "customer_key",
            F.col("rank").cast("int").alias("rank"),
            "sku",
            F.col("score").cast("double"),
            "reason",
        )
    )


def latest_model(spark: SparkSession, cfg: Config, not_after: date | None = None) -> Row:
    """The newest ops.models row (trained for an as_of on or before `not_after`, when given)."""
    if not lake.exists(spark, cfg, MODELS_TABLE):
        raise NoModel(
            f"{lake.table_path(cfg, MODELS_TABLE)} does not exist: train a model first (`o2o run train`)"
        )
    models = lake.read(spark, cfg, MODELS_TABLE)
    if not_after is not None:
        models = models.where(F.col("as_of") <= F.lit(not_after))
    # One row; bounded.
    row = models.orderBy(F.col("as_of").desc(), F.col("trained_at").desc()).head()
    if row is None:
        raise NoModel(
            f"ops.models has no model trained for a date on or before {not_after}: run `o2o run train --as-of ...`"
        )
    return row


def _read_optional(spark: SparkSession, cfg: Config, name: str) -> DataFrame | None:
    return lake.read(spark, cfg, name) if lake.exists(spark, cfg, name) else None


def _scalar(df: DataFrame) -> int:
    # One aggregate value; bounded.
    value = df.head()[0]
    return int(value or 0)


@contextmanager
def compute(
    spark: SparkSession, cfg: Config, as_of: date, model_row: Row, population: DataFrame | None = None
) -> Iterator[DataFrame]:
    """Recommendations (customer_key, rank, sku, score, reason) for `population` (default: every customer seen).

    Use the frame inside the block: the customers, their bought items and the popularity lists are small
    and each read by several parts of the plan, so they are computed once and freed when the block ends.
    """
    rc = cfg.reco
    end = datetime.combine(as_of + timedelta(days=1), time.min)
    model, customer_ids, sku_ids = als.load(spark, model_row["model_path"])
    interactions = lake.read(spark, cfg, "silver.interactions").where(F.col("event_ts") < F.lit(end))
    rfm = _read_optional(spark, cfg, "gold.customer_rfm")
    segments = None
    if rfm is not None:
        newest = rfm.where(F.col("as_of") <= F.lit(as_of)).agg(F.max("as_of")).head()[0]  # one value; bounded
        segments = (
            rfm.where(F.col("as_of") == F.lit(newest)).select("customer_key", "segment") if newest else None
        )
    if population is None:
        seen = [interactions.select("customer_key"), customer_ids.select("customer_key")]
        customers_table = _read_optional(spark, cfg, "silver.customers")
        if customers_table is not None:
            seen.append(customers_table.select("customer_key"))
        if segments is not None:
            seen.append(segments.select("customer_key"))
        population = union_all(seen).where(F.col("customer_key").isNotNull()).distinct()
    with ExitStack() as held:
        population = held.enter_context(checkpointed(population))

        bought = None
        if rc.exclude_purchased:
            orders, lines = (
                _read_optional(spark, cfg, "silver.orders"),
                _read_optional(spark, cfg, "silver.order_lines"),
            )
            bought = held.enter_context(
                checkpointed(
                    bought_items(orders, lines, interactions, end).join(
                        population, "customer_key", "left_semi"
                    )
                )
            )
        products = _read_optional(spark, cfg, "silver.products")
        catalogue = (
            products.where(F.coalesce(F.col("is_known"), F.lit(True))).select("sku")
            if products is not None
            else None
        )

        # Ask for enough candidates that top_n survive the exclusions.
        depth = rc.top_n
        if bought is not None:
            depth += _scalar(bought.groupBy("customer_key").count().agg(F.max("count")))
        if catalogue is not None:
            depth += _scalar(sku_ids.join(catalogue, "sku", "left_anti").agg(F.count(F.lit(1))))

        users = population.join(customer_ids, "customer_key")
        als_candidates = (
            als.top_items(model, users, depth)
            .join(customer_ids, "user")
            .join(F.broadcast(sku_ids), "item")
            .select("customer_key", "sku", "score")
        )
        confidence = features.implicit_confidence(
            interactions, end, rc.event_weights, rc.recency_half_life_days
        )
        popular = held.enter_context(checkpointed(baselines.popularity(confidence, segments)))
        cold = population.join(customer_ids, "customer_key", "left_anti")
        popular_candidates = baselines.segment_popular(cold, popular, segments, depth)
        yield assemble(
            population, customer_ids, als_candidates, popular_candidates, bought, catalogue, rc.top_n
        )


def run(
    spark: SparkSession, cfg: Config, as_of: date, run_id: str, accept: tuple[str, ...] = ()
) -> StageResult:
    """Latest model in ops.models -> gold.recommendations snapshot for `as_of` (gated, then replaced)."""
    input_versions = {name: lake.version(spark, cfg, name) for name in INPUTS}
    model_row = latest_model(spark, cfg, not_after=as_of)
    input_versions[MODELS_TABLE] = lake.version(spark, cfg, MODELS_TABLE)
    with compute(spark, cfg, as_of, model_row) as computed:
        recommendations = _published(computed, as_of, model_row).withColumn("run_id", F.lit(run_id)).cache()
        try:
            quality.gate(
                spark, cfg, TABLE, recommendations, run_id=run_id, stage=STAGE, as_of=as_of, accept=accept
            )
            lake.ensure_table(spark, cfg, TABLE, RECO[TABLE], partition_by=("as_of",))
            lake.replace_snapshot(recommendations, cfg, TABLE, as_of)
            # One aggregate row; bounded.
            counts = recommendations.agg(
                F.count(F.lit(1)).alias("rows"),
                F.countDistinct("customer_key").alias("customers"),
                F.sum(F.when(F.col("reason") == "segment_popular", 1).otherwise(0)).alias("cold_rows"),
            ).head()
        finally:
            recommendations.unpersist()
    return StageResult(
        stage=STAGE,
        input_versions=input_versions,
        output_versions={TABLE: lake.version(spark, cfg, TABLE)},
        rows_in=int(counts["customers"]),
        rows_out=int(counts["rows"]),
        details={
            "model_version": model_row["model_version"],
            "cold_start_rows": int(counts["cold_rows"] or 0),
        },
    )


def _published(computed: DataFrame, as_of: date, model_row: Row) -> DataFrame:
    """Computed lists in the published column order, stamped with the date and the model version."""
    return computed.select(
        F.lit(as_of).alias("as_of"),
        "customer_key",
        "rank",
        "sku",
        "score",
        "reason",
        F.lit(model_row["model_version"]).alias("model_version"),
    )


def recommend_for(spark: SparkSession, cfg: Config, customer_key: str) -> list[Row]:
    """One customer's list (rank, sku, score, reason, model_version): the latest snapshot, else scored now."""
    if lake.exists(spark, cfg, TABLE):
        published = lake.read(spark, cfg, TABLE).where(F.col("customer_key") == customer_key)
        newest = published.agg(F.max("as_of")).head()[0]  # one value; bounded
        if newest is not None:
            # At most top_n rows; bounded.
            return (
                published.where(F.col("as_of") == F.lit(newest))
                .orderBy("rank")
                .select("as_of", "customer_key", "rank", "sku", "score", "reason", "model_version")
                .collect()
            )
    model_row = latest_model(spark, cfg)
    one = local_frame(spark, [(customer_key,)], "customer_key string")
    with compute(spark, cfg, model_row["as_of"], model_row, population=one) as computed:
        # Scored for this one customer only: at most top_n rows; bounded.
        return _published(computed, model_row["as_of"], model_row).orderBy("rank").collect()
