"""Training stage: tune implicit ALS on a validation slice, test it against baselines, fit and record the model."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame, SparkSession

import o2o
from o2o import lake
from o2o.config import Config, RecoConfig
from o2o.contracts import RECO
from o2o.frames import broadcast_when_small, local_checkpoint, local_frame, release
from o2o.reco import als, baselines, features, metrics, movielens
from o2o.runs import StageResult, progress
from o2o.spark import task_slots

STAGE = "train"
INPUTS = (
    "silver.interactions",
    "silver.orders",
    "silver.order_lines",
    "silver.products",
    "gold.customer_rfm",
)
MODELS_TABLE = "ops.models"
METRICS_TABLE = "gold.model_metrics"
TABLE_COLUMNS = ("model", "customers", *metrics.RANKING_METRICS)
# Customer lists (the customers known in training, the window's buyers, their RFM segments) are joined to
# millions of confidence and interaction rows. Up to this many rows they are broadcast: past Spark's 10 MB
# estimate (about 300,000 customers) those joins become sort-merge joins that shuffle the large side.
BROADCAST_MAX_ROWS = 1_000_000


class TrainingError(RuntimeError):
    """Training cannot proceed (no data in the window); the message says which window and table."""


def grid_combinations(grid: dict) -> list[dict]:
    """Every combination of the grid's value lists, in a stable order (keys sorted)."""
    keys = sorted(grid)
    values = [grid[k] if isinstance(grid[k], (list, tuple)) else [grid[k]] for k in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def model_dir(cfg: Config, model_version: str) -> str:
    """Folder of a saved model version under the lake root."""
    return f"{cfg.resolve(cfg.lake.root).rstrip('/')}/models/{model_version}"


def segments_at(rfm: DataFrame, snapshot: date) -> DataFrame:
    """customer_key, segment from one gold.customer_rfm snapshot."""
    return rfm.where(F.col("as_of") == F.lit(snapshot)).select("customer_key", "segment")


def latest_snapshot(spark: SparkSession, cfg: Config, not_after: date) -> date | None:
    """The newest gold.customer_rfm as_of on or before `not_after`, else the newest there is, else None."""
    if not lake.exists(spark, cfg, "gold.customer_rfm"):
        return None
    # One aggregate row; bounded.
    row = (
        lake.read(spark, cfg, "gold.customer_rfm")
        .agg(
            F.max(F.when(F.col("as_of") <= F.lit(not_after), F.col("as_of"))).alias("at_cutoff"),
            F.max("as_of").alias("latest"),
        )
        .head()
    )
    return row["at_cutoff"] or row["latest"]


def read_interactions(spark: SparkSession, cfg: Config, version: int | None = None) -> DataFrame:
    """The silver.interactions columns training uses, at `version` (default: the current one)."""
    return lake.read(spark, cfg, "silver.interactions", version=version).select(
        "customer_key", "sku", "event_type", "event_ts", "quantity", "rating"
    )


def segments_before(
    spark: SparkSession, cfg: Config, window: features.Windows, rfm_version: int | None = None
) -> tuple[date | None, DataFrame | None]:
    """The RFM snapshot of the last training day (else the latest) and its customer_key, segment rows."""
    snapshot = latest_snapshot(spark, cfg, (window.test_start - timedelta(days=1)).date())
    if snapshot is None:
        return None, None
    return snapshot, segments_at(lake.read(spark, cfg, "gold.customer_rfm", version=rfm_version), snapshot)


class Confidences:
    """Implicit confidence per customer x sku at each reference time of a run, computed once and kept on disk.

    One aggregation and one customer window over the events serve every reference
    (`features.implicit_confidences`). Before, each of the stage's three training sets (tuning, test, final
    model) aggregated and shuffled the events on its own.
    """

    def __init__(self, interactions: DataFrame, references: Sequence[datetime], rc: RecoConfig):
        self.references = list(references)
        self.frame = features.implicit_confidences(
            interactions, self.references, rc.event_weights, rc.recency_half_life_days, rc.min_interactions
        ).persist(StorageLevel.DISK_ONLY)
        # On disk, not in memory: cached in memory at 5M order lines (16M rows), the bench's 4 GiB driver ran
        # out of heap in ALS's in-block sort (arrays outside Spark's storage pool); on disk it did not.

    def index(self, reference: datetime) -> int:
        """The position of `reference` among this run's reference times."""
        if reference not in self.references:
            raise ValueError(f"no confidences before {reference}; these have {self.references}")
        return self.references.index(reference)

    def release(self) -> None:
        self.frame.unpersist()


class TrainingSet:
    """Id maps and ALS ratings of the events before one reference time, computed once.

    Every fit of a parameter grid reads the same ratings: materialised, they are neither recomputed (the
    confidence aggregate, the id numbering, two joins) nor re-planned per fit.
    """

    def __init__(
        self,
        confidences: Confidences,
        reference: datetime,
        broadcast_max_rows: int = BROADCAST_MAX_ROWS,
        owns_confidences: bool = False,
    ):
        index = confidences.index(reference)
        self._owned = confidences if owns_confidences else None
        self.confidence = features.at_reference(confidences.frame, index)
        # Filters of the cached confidences, read three times: by both id maps and by the ratings.
        trainable = features.at_reference(confidences.frame, index, trainable_only=True)
        self.customer_ids = features.dense_index(trainable, "customer_key", "user").cache()
        self.sku_ids = features.dense_index(trainable, "sku", "item").cache()
        # customer_ids for joins, broadcast while small.
        self.customer_lookup = broadcast_when_small(self.customer_ids, broadcast_max_rows)
        # On disk: ALS reads the ratings once per fit to build its own blocks. Held deserialized in memory, the
        # final training set at 5M order lines took 1.5 GB of the 4 GiB heap (145 MB on disk), and that fit
        # spent 63 of its 99 s in GC.
        self.ratings = local_checkpoint(
            features.to_ratings(trainable, self.customer_lookup, self.sku_ids), StorageLevel.DISK_ONLY
        )
        self.empty = self.ratings.isEmpty()

    def fit(self, rc: RecoConfig, params: dict, blocks: int) -> ALSModel | None:
        """Implicit ALS with `params` on these ratings; None when there is nothing to train on."""
        if self.empty:
            return None
        estimator = als.build(
            params, implicit=True, seed=rc.seed, checkpoint_interval=rc.checkpoint_interval, blocks=blocks
        )
        return estimator.fit(self.ratings)

    def release(self) -> None:
        for frame in (self.customer_ids, self.sku_ids):
            frame.unpersist()
        release(self.ratings)
        if self._owned is not None:
            self._owned.release()


def training_set(
    interactions: DataFrame,
    reference: datetime,
    rc: RecoConfig,
    confidences: Confidences | None = None,
    broadcast_max_rows: int = BROADCAST_MAX_ROWS,
) -> TrainingSet:
    """The training set of the events before `reference`: from the run's shared `confidences` when given,
    else from confidences of its own, released with it."""
    if confidences is not None:
        return TrainingSet(confidences, reference, broadcast_max_rows)
    own = Confidences(interactions, [reference], rc)
    return TrainingSet(own, reference, broadcast_max_rows, owns_confidences=True)


class Fit:
    """An ALS model with the training set (id maps, confidence) it was fitted on."""

    def __init__(self, model: ALSModel | None, data: TrainingSet):
        self.model = model
        self.data = data
        self.customer_ids = data.customer_ids
        self.sku_ids = data.sku_ids
        self.confidence = data.confidence

    def recommend(self, customers: DataFrame, k: int) -> DataFrame:
        """Top-k ALS items for customers the model knows: customer_key, sku, score, rank."""
        users = customers.select("customer_key").distinct().join(self.data.customer_lookup, "customer_key")
        return (
            als.top_items(self.model, users, k)
            .join(self.data.customer_lookup, "user")
            .join(F.broadcast(self.sku_ids), "item")
            .select("customer_key", "sku", "score", "rank")
        )

    def release(self) -> None:
        self.data.release()


def fit_implicit(
    interactions: DataFrame,
    reference: datetime,
    rc: RecoConfig,
    params: dict,
    blocks: int,
    confidences: Confidences | None = None,
) -> Fit:
    """Fit implicit ALS on events before `reference` (customers with too few events are left out).

    `confidences`: the run's confidences at several references, shared (else computed for this fit alone).
    """
    data = training_set(interactions, reference, rc, confidences)
    return Fit(data.fit(rc, params, blocks), data)


def _scores(recommended: DataFrame, relevant: DataFrame, k: int) -> dict:
    # One aggregate row; bounded.
    return metrics.ranking_metrics(recommended, relevant, k).head().asDict()


def evaluate_grid(
    interactions: DataFrame,
    train_end: datetime,
    eval_end: datetime,
    rc: RecoConfig,
    grid: list[dict],
    blocks: int,
    segments: DataFrame | None = None,
    with_baselines: bool = False,
    broadcast_max_rows: int = BROADCAST_MAX_ROWS,
    confidences: Confidences | None = None,
) -> tuple[list[dict], dict[str, dict]]:
    """Train before `train_end` with each parameter set, rank for customers who bought in [train_end, eval_end).

    The customers scored are the window's buyers known in training, the same for every model. Returns
    ALS's {customers, precision_at_k, recall_at_k, ndcg_at_k, map_at_k} per parameter set (in grid order;
    {} when nothing is trainable) and, when asked, the baselines' scores by name. Customer lists of at most
    `broadcast_max_rows` rows are broadcast to the joins that read them. `confidences`: the run's confidences
    at several references, shared (else computed for `train_end` alone); with them, `interactions` is read
    for its purchases only.
    """
    data = training_set(interactions, train_end, rc, confidences, broadcast_max_rows)
    if data.empty:
        data.release()
        return [{} for _ in grid], {}
    relevant = (
        features.purchases_between(interactions, train_end, eval_end)
        .join(data.customer_lookup.select("customer_key"), "customer_key", "left_semi")
        .cache()
    )
    customers = relevant.select("customer_key").distinct().cache()
    try:
        als_scores = [
            _scores(Fit(data.fit(rc, params, blocks), data).recommend(customers, rc.k), relevant, rc.k)
            for params in grid
        ]
        others = {}
        if with_baselines:
            segment_lookup = None if segments is None else broadcast_when_small(segments, broadcast_max_rows)
            popular = baselines.popularity(data.confidence, segment_lookup)
            history = features.before(interactions, train_end)
            candidates = {
                "global_popular": baselines.global_popular(customers, popular, rc.k),
                "segment_popular": baselines.segment_popular(customers, popular, segment_lookup, rc.k),
                "buy_again": baselines.buy_again(
                    broadcast_when_small(customers, broadcast_max_rows), history, rc.k
                ),
            }
            others = {name: _scores(recs, relevant, rc.k) for name, recs in candidates.items()}
        return als_scores, others
    finally:
        relevant.unpersist()
        customers.unpersist()
        data.release()


def evaluate_window(
    interactions: DataFrame,
    train_end: datetime,
    eval_end: datetime,
    rc: RecoConfig,
    params: dict,
    blocks: int,
    segments: DataFrame | None = None,
    with_baselines: bool = False,
    broadcast_max_rows: int = BROADCAST_MAX_ROWS,
    confidences: Confidences | None = None,
) -> dict[str, dict]:
    """One parameter set through `evaluate_grid`: {model: scores} for ALS and, when asked, the baselines."""
    (als_scores,), others = evaluate_grid(
        interactions,
        train_end,
        eval_end,
        rc,
        [params],
        blocks,
        segments,
        with_baselines,
        broadcast_max_rows,
        confidences,
    )
    return {"als": als_scores, **others} if als_scores else {}


def evaluate_explicit(
    interactions: DataFrame, train_end: datetime, eval_end: datetime, rc: RecoConfig, blocks: int
) -> dict:
    """Explicit ALS on review ratings: train before `train_end`, RMSE/MAE on reviews in [train_end, eval_end)."""
    # Computed once (a window over every review): the id maps, the fit and the scoring each read it.
    reviews = local_checkpoint(
        features.review_ratings(interactions.where(F.col("event_ts") < F.lit(eval_end)))
    )
    try:
        return _explicit_errors(reviews, train_end, rc, blocks)
    finally:
        release(reviews)


def _explicit_errors(reviews: DataFrame, train_end: datetime, rc: RecoConfig, blocks: int) -> dict:
    train = reviews.where(F.col("event_ts") < F.lit(train_end))
    test = reviews.where(F.col("event_ts") >= F.lit(train_end))
    params = dict(movielens.DEFAULT_PARAMS)
    if train.isEmpty() or test.isEmpty():
        return {"params": params, "rows": 0, "rmse": None, "mae": None}
    customer_ids = features.dense_index(train, "customer_key", "user").cache()
    sku_ids = features.dense_index(train, "sku", "item").cache()
    estimator = als.build(
        params, implicit=False, seed=rc.seed, checkpoint_interval=rc.checkpoint_interval, blocks=blocks
    )
    model = estimator.fit(features.to_ratings(train, customer_ids, sku_ids, value="rating"))
    scored = movielens.clipped(
        model.transform(features.to_ratings(test, customer_ids, sku_ids, value="rating"))
    )
    # One aggregate row; bounded.
    errors = metrics.rating_errors(scored).head().asDict()
    customer_ids.unpersist()
    sku_ids.unpersist()
    return {"params": params, **errors}


def metric_rows(
    as_of: date, run_id: str, model_version: str, k: int, tuning: list[dict], test: dict, explicit: dict
) -> list[tuple]:
    """gold.model_metrics rows: every tuning combination (validation), ALS and baselines (test), explicit errors."""
    rows = []
    for tried in tuning:
        for name in metrics.RANKING_METRICS:
            scores = tried.get("als") or {}
            rows.append(
                (
                    as_of,
                    run_id,
                    model_version,
                    "validation",
                    "als",
                    json.dumps(tried["params"], sort_keys=True),
                    name,
                    k,
                    scores.get(name),
                    scores.get("customers"),
                )
            )
    for model, scores in test.items():
        params = json.dumps(test.get("_params", {}), sort_keys=True) if model == "als" else "{}"
        if model.startswith("_"):
            continue
        for name in metrics.RANKING_METRICS:
            rows.append(
                (
                    as_of,
                    run_id,
                    model_version,
                    "test",
                    model,
                    params,
                    name,
                    k,
                    scores.get(name),
                    scores.get("customers"),
                )
            )
    for name in ("rmse", "mae"):
        rows.append(
            (
                as_of,
                run_id,
                model_version,
                "test",
                "als_explicit",
                json.dumps(explicit["params"], sort_keys=True),
                name,
                None,
                explicit.get(name),
                explicit.get("rows"),
            )
        )
    return [
        (*row[:8], None if row[8] is None else float(row[8]), None if row[9] is None else int(row[9]))
        for row in rows
    ]


def comparison(test: dict) -> dict:
    """ALS NDCG@k against the best baseline: who wins and by how much."""
    als_ndcg = (test.get("als") or {}).get("ndcg_at_k")
    ranked = sorted(
        (
            (scores.get("ndcg_at_k"), name)
            for name, scores in test.items()
            if name in baselines.BASELINES and scores
        ),
        reverse=True,
    )
    if als_ndcg is None or not ranked:
        return {"als_ndcg": als_ndcg, "best_baseline": None, "margin": None, "als_wins": None}
    best_ndcg, best = ranked[0]
    return {
        "als_ndcg": als_ndcg,
        "best_baseline": best,
        "best_baseline_ndcg": best_ndcg,
        "margin": als_ndcg - best_ndcg,
        "als_wins": als_ndcg > best_ndcg,
    }


def run(
    spark: SparkSession, cfg: Config, as_of: date, run_id: str, accept: tuple[str, ...] = ()
) -> StageResult:
    """silver.interactions (+ gold.customer_rfm) -> tuned ALS model, ops.models row, gold.model_metrics rows."""
    with als.run_checkpoints(spark, lake.checkpoints_dir(cfg), run_id):
        return _train(spark, cfg, as_of, run_id)


def _train(spark: SparkSession, cfg: Config, as_of: date, run_id: str) -> StageResult:
    rc = cfg.reco
    # One ALS block per task slot: more blocks than slots add shuffle and scheduling work, not parallelism.
    blocks = task_slots(spark)
    input_versions = {name: lake.version(spark, cfg, name) for name in INPUTS}
    if input_versions["silver.interactions"] is None:
        raise TrainingError(
            f"silver.interactions does not exist at {lake.table_path(cfg, 'silver.interactions')}; run the silver stage first"
        )
    interactions = read_interactions(spark, cfg, input_versions["silver.interactions"])
    window = features.windows(as_of, rc.test_days, rc.validation_days)
    snapshot, segments = segments_before(spark, cfg, window, input_versions["gold.customer_rfm"])
    if segments is not None:
        segments = segments.cache()

    grid = grid_combinations(rc.grid)
    progress(
        STAGE,
        f"tuning: {len(grid)} parameter set(s) on the validation days before {window.test_start:%Y-%m-%d}",
    )
    # The three training sets (tuning, test, final model) come from one pass over the events, so the events
    # are not held in memory; only the ones read again are: purchases (the evaluation windows' relevant items,
    # buy-again) and reviews (explicit ALS). At 5M order lines that is 5 of 40 million rows.
    confidences = Confidences(interactions, [window.validation_start, window.test_start, window.end], rc)
    purchases_and_reviews = interactions.where(F.col("event_type").isin("purchase", "review")).cache()
    tuned, _ = evaluate_grid(
        purchases_and_reviews,
        window.validation_start,
        window.test_start,
        rc,
        grid,
        blocks,
        confidences=confidences,
    )
    tuning = [
        {"params": params, **({"als": scores} if scores else {})}
        for params, scores in zip(grid, tuned, strict=True)
    ]
    scored = [t for t in tuning if t.get("als")]
    chosen = max(scored, key=lambda t: t["als"]["ndcg_at_k"])["params"] if scored else tuning[0]["params"]
    progress(STAGE, f"chose {chosen}; scoring it and the baselines on the test days")
    test = evaluate_window(
        purchases_and_reviews,
        window.test_start,
        window.end,
        rc,
        chosen,
        blocks,
        segments,
        with_baselines=True,
        confidences=confidences,
    )
    explicit = evaluate_explicit(purchases_and_reviews, window.test_start, window.end, rc, blocks)

    progress(STAGE, f"fitting the model on every interaction before {window.end:%Y-%m-%d}")
    final = fit_implicit(interactions, window.end, rc, chosen, blocks, confidences)
    if final.model is None:
        raise TrainingError(
            f"no customer has {rc.min_interactions}+ weighted interactions before {window.end:%Y-%m-%d}; "
            "nothing to train on (check silver.interactions and reco.min_interactions)"
        )
    model_version = f"als-{as_of:%Y%m%d}-{run_id}"
    path = model_dir(cfg, model_version)
    als.save(final.model, final.customer_ids, final.sku_ids, path)
    customers, skus = final.customer_ids.count(), final.sku_ids.count()
    final.release()
    confidences.release()

    verdict = comparison(test)
    test_with_params = {**test, "_params": chosen}
    record = (
        model_version,
        datetime.now(timezone.utc).replace(tzinfo=None),
        as_of,
        run_id,
        path,
        json.dumps(
            {**chosen, "implicit": True, "seed": rc.seed, "min_interactions": rc.min_interactions},
            sort_keys=True,
        ),
        json.dumps(
            {"als": test.get("als"), "als_explicit": explicit, "vs_best_baseline": verdict}, sort_keys=True
        ),
        json.dumps({name: test.get(name) for name in baselines.BASELINES}, sort_keys=True),
        json.dumps({"chosen": chosen, "by": "validation ndcg_at_k", "tried": tuning}, sort_keys=True),
        json.dumps(input_versions, sort_keys=True),
        o2o.__version__,
        customers,
        skus,
    )
    rows = metric_rows(as_of, run_id, model_version, rc.k, tuning, test_with_params, explicit)
    lake.ensure_table(spark, cfg, MODELS_TABLE, RECO[MODELS_TABLE])
    lake.ensure_table(spark, cfg, METRICS_TABLE, RECO[METRICS_TABLE], partition_by=("as_of",))
    lake.append_once(
        local_frame(spark, [record], RECO[MODELS_TABLE]), cfg, MODELS_TABLE, f"o2o.reco.train.{run_id}", 0
    )
    lake.append_once(
        local_frame(spark, rows, RECO[METRICS_TABLE]), cfg, METRICS_TABLE, f"o2o.reco.train.{run_id}", 0
    )
    purchases_and_reviews.unpersist()
    if segments is not None:
        segments.unpersist()

    table = report(test, explicit, verdict, rc.k)
    print(table)
    return StageResult(
        stage=STAGE,
        input_versions=input_versions,
        output_versions={name: lake.version(spark, cfg, name) for name in (MODELS_TABLE, METRICS_TABLE)},
        rows_in=customers,
        rows_out=1,
        details={
            "model_version": model_version,
            "params": chosen,
            "segments_as_of": snapshot,
            "test": test,
            "explicit": explicit,
            "vs_best_baseline": verdict,
            "table": table,
        },
    )


def report(test: dict, explicit: dict, verdict: dict, k: int) -> str:
    """The metrics table printed by the training job: ALS and baselines at k, explicit errors, the verdict."""
    rows = [{"model": name, **scores} for name, scores in test.items() if scores and not name.startswith("_")]
    header = (
        f"ranking metrics at k={k} on the test window (customers who bought in it and are known in training)"
    )
    lines = [header, metrics.format_table(rows, TABLE_COLUMNS)]
    if explicit.get("rmse") is not None:
        lines.append(
            f"explicit ALS on review ratings: RMSE {explicit['rmse']:.4f}  MAE {explicit['mae']:.4f}  ({explicit['rows']} ratings)"
        )
    if verdict.get("als_wins") is True:
        lines.append(
            f"ALS beats the best baseline ({verdict['best_baseline']}) on NDCG@{k} by {verdict['margin']:.4f}"
        )
    elif verdict.get("als_wins") is False:
        lines.append(
            f"ALS does NOT beat the best baseline ({verdict['best_baseline']}) on NDCG@{k}: short by {-verdict['margin']:.4f}"
        )
    return "\n".join(lines)
