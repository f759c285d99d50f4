"""The demo report: one self-contained HTML page (inline SVG charts, no JavaScript) about a lake's state."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from o2o import contracts, lake
from o2o.config import Config

REPORT_FILE = "demo_report.html"
PALETTE = ("#2f6db5", "#e07b39", "#3a9e6f", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
CHANNEL_COLOURS = {"web": "#2f6db5", "app": "#e07b39", "mini_program": "#3a9e6f", "pos": "#8172b3"}
MODEL_ORDER = ("als", "als_explicit", "global_popular", "segment_popular", "buy_again")
RANKING_METRICS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k")
METRIC_LABELS = {
    "precision_at_k": "Precision@{k}",
    "recall_at_k": "Recall@{k}",
    "ndcg_at_k": "NDCG@{k}",
    "map_at_k": "MAP@{k}",
    "rmse": "RMSE",
    "mae": "MAE",
}
NEW = "(new)"
GONE = "(left window)"


class NotComputed(LookupError):
    """A table the section needs does not exist yet, or holds nothing for the date."""


class LakeReads:
    """One page's reads of the lake, each run once: the sections and the headline tiles share their results.

    `reads(segment_sizes)` calls `segment_sizes(spark, cfg, as_of)` the first time and returns (or raises
    NotComputed) the same thing after that. `tables`: table_versions' rows when the caller already has them.
    """

    def __init__(self, spark: SparkSession, cfg: Config, as_of: date, tables: Sequence[dict] | None = None):
        self.spark = spark
        self.cfg = cfg
        self.as_of = as_of
        self._tables = tables
        self._done: dict[Callable, tuple[object, NotComputed | None]] = {}

    def __call__(self, read: Callable[[SparkSession, Config, date], object]):
        if read not in self._done:
            try:
                self._done[read] = (read(self.spark, self.cfg, self.as_of), None)
            except NotComputed as missing:
                self._done[read] = (None, missing)
        value, missing = self._done[read]
        if missing is not None:
            raise missing
        return value

    def tables(self) -> Sequence[dict]:
        """table_versions' rows (looked up once)."""
        if self._tables is None:
            self._tables = table_versions(self.spark, self.cfg)
        return self._tables


# ---------------------------------------------------------------- SVG charts (pure: numbers in, markup out)


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 up to at least `top` (1-2-2.5-5 steps)."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(math.ceil(top / step - 1e-9)) + 1)]


def fmt_number(value: float | None, digits: int = 0) -> str:
    """1,234 / 12.3k / 1.2M: short labels for axes and bars."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.1f}M"
    if size >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:,.{digits}f}"


def _svg_open(chart_id: str, title: str, width: int, height: int) -> str:
    """The opening <svg> of a chart (closed by the caller) and its title line."""
    return (
        f'<svg id="{_esc(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">'
        f'<text x="0" y="18" class="chart-title">{_esc(title)}</text>'
    )


@dataclass(frozen=True)
class _Plot:
    """The plotting area of a chart with a legend and a y axis from 0: its box, y scale and series colours."""

    size: tuple[int, int]  # the whole chart's width and height
    left: float
    top: float
    width: float
    height: float
    ticks: list[float]
    names: list[str]
    colour_of: dict[str, str]

    @classmethod
    def of(
        cls,
        series: dict[str, Sequence[float | None]],
        colours: dict[str, str] | None,
        size: tuple[int, int],
        margins: tuple[int, int, int, int],
    ) -> _Plot:
        (width, height), (left, right, top, bottom) = size, margins
        finite = [v for vs in series.values() for v in vs if v is not None and math.isfinite(v)]
        names = list(series)
        return cls(
            size=size,
            left=left,
            top=top,
            width=width - left - right,
            height=height - top - bottom,
            ticks=nice_ticks(max(finite, default=0.0)),
            names=names,
            colour_of={n: (colours or {}).get(n, PALETTE[i % len(PALETTE)]) for i, n in enumerate(names)},
        )

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def y_at(self, value: float) -> float:
        return self.top + self.height * (1 - value / self.ticks[-1])

    def opening(self, chart_id: str, title: str) -> str:
        """<svg>, the title and the legend (the caller closes the chart with `closing`)."""
        return _svg_open(chart_id, title, *self.size) + _legend(
            self.names, self.colour_of, x=self.left, y=36, width=self.width
        )

    def grid(self, label: Callable[[float], str]) -> str:
        """A horizontal grid line and its label at every tick."""
        return "".join(
            f'<line x1="{self.left}" x2="{self.left + self.width}" y1="{self.y_at(t):.1f}" y2="{self.y_at(t):.1f}" '
            f'class="grid"/><text x="{self.left - 6}" y="{self.y_at(t) + 4:.1f}" text-anchor="end" '
            f'class="tick">{_esc(label(t))}</text>'
            for t in self.ticks
        )

    def closing(self) -> str:
        """The x axis line and </svg>."""
        return (
            f'<line x1="{self.left}" x2="{self.left + self.width}" y1="{self.bottom}" y2="{self.bottom}" '
            'class="axis"/></svg>'
        )


def bar_chart_svg(
    items: Sequence[tuple[str, float]],
    chart_id: str,
    title: str,
    value_label: Callable[[float], str] = fmt_number,
    colours: Sequence[str] | None = None,
    width: int = 640,
) -> str:
    """Horizontal bars, one per (label, value), value printed at the bar's end."""
    bar, gap, left, right, top = 22, 8, 170, 70, 34
    height = top + len(items) * (bar + gap) + 10
    peak = max((v for _, v in items), default=0.0) or 1.0
    span = width - left - right
    parts = [_svg_open(chart_id, title, width, height)]
    for i, (label, value) in enumerate(items):
        y = top + i * (bar + gap)
        length = max(1.0, span * max(value, 0.0) / peak)
        colour = colours[i % len(colours)] if colours else PALETTE[0]
        parts += [
            f'<text x="{left - 8}" y="{y + bar * 0.7:.1f}" text-anchor="end" class="label">{_esc(label)}</text>',
            f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar}" rx="3" fill="{colour}">'
            f"<title>{_esc(label)}: {_esc(value_label(value))}</title></rect>",
            f'<text x="{left + length + 6:.1f}" y="{y + bar * 0.7:.1f}" class="value">{_esc(value_label(value))}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def grouped_bar_svg(
    groups: Sequence[str],
    series: dict[str, Sequence[float | None]],
    chart_id: str,
    title: str,
    colours: dict[str, str] | None = None,
    width: int = 760,
    height: int = 300,
) -> str:
    """Vertical bars: one cluster per group, one bar per series inside it, with a legend."""
    plot = _Plot.of(series, colours, (width, height), margins=(56, 16, 58, 34))
    slot = plot.width / max(len(groups), 1)
    bar_w = min(34.0, slot * 0.8 / max(len(plot.names), 1))
    parts = [plot.opening(chart_id, title), plot.grid(lambda tick: f"{tick:.3g}")]
    for g, group in enumerate(groups):
        cluster = len(plot.names) * bar_w
        x0 = plot.left + g * slot + (slot - cluster) / 2
        for s, name in enumerate(plot.names):
            value = series[name][g]
            if value is None or not math.isfinite(value):
                continue
            h = plot.height * max(value, 0.0) / plot.ticks[-1]
            parts.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{plot.bottom - h:.1f}" width="{bar_w - 2:.1f}" '
                f'height="{h:.1f}" fill="{plot.colour_of[name]}"><title>{_esc(name)} {_esc(group)}: '
                f"{value:.4f}</title></rect>"
            )
        parts.append(
            f'<text x="{plot.left + g * slot + slot / 2:.1f}" y="{plot.bottom + 20}" text-anchor="middle" '
            f'class="label">{_esc(group)}</text>'
        )
    parts.append(plot.closing())
    return "".join(parts)


def line_chart_svg(
    x_labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    chart_id: str,
    title: str,
    colours: dict[str, str] | None = None,
    y_format: Callable[[float], str] = fmt_number,
    width: int = 760,
    height: int = 280,
) -> str:
    """One line per series over shared x labels (days); gaps where a value is missing."""
    plot = _Plot.of(series, colours, (width, height), margins=(64, 16, 58, 40))
    n = len(x_labels)

    def x_at(i: int) -> float:
        return plot.left + (plot.width * i / (n - 1) if n > 1 else plot.width / 2)

    parts = [plot.opening(chart_id, title), plot.grid(y_format)]
    every = max(1, math.ceil(n / 10))
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == n - 1:
            parts.append(
                f'<text x="{x_at(i):.1f}" y="{plot.bottom + 18}" text-anchor="middle" class="tick">{_esc(label)}</text>'
            )
    for name in plot.names:
        colour = plot.colour_of[name]
        segments: list[list[str]] = [[]]
        for i, value in enumerate(series[name]):
            if value is None or not math.isfinite(value):
                segments.append([])
                continue
            segments[-1].append(f"{x_at(i):.1f},{plot.y_at(value):.1f}")
        for points in segments:
            if len(points) > 1:
                parts.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2.2" stroke-linejoin="round"><title>{_esc(name)}</title></polyline>'
                )
            for point in points:
                x, y = point.split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="2.6" fill="{colour}"/>')
    parts.append(plot.closing())
    return "".join(parts)


def _legend(names: Sequence[str], colour_of: dict[str, str], x: float, y: float, width: float) -> str:
    parts, cursor = [], x
    for name in names:
        if cursor > x + width - 80:
            break
        parts.append(
            f'<rect x="{cursor:.1f}" y="{y - 9}" width="12" height="12" rx="2" fill="{colour_of[name]}"/>'
            f'<text x="{cursor + 17:.1f}" y="{y + 1}" class="legend">{_esc(name)}</text>'
        )
        cursor += 30 + 7.5 * len(name)
    return "".join(parts)


def html_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], table_id: str = "", numeric_from: int = 1
) -> str:
    """A plain table; columns from `numeric_from` on are right-aligned."""
    head = "".join(
        f'<th class="{"num" if i >= numeric_from else ""}">{_esc(h)}</th>' for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i >= numeric_from else ""}">{_esc(c)}</td>' for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    ident = f' id="{_esc(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def heatmap_table(
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    counts: dict[tuple[str, str], int],
    table_id: str,
    corner: str,
) -> str:
    """A matrix of counts whose cells are shaded by size (diagonal cells outlined: customers who stayed)."""
    peak = max(counts.values(), default=0) or 1
    head = f'<th class="corner">{_esc(corner)}</th>' + "".join(
        f'<th class="num rot">{_esc(c)}</th>' for c in col_labels
    )
    rows = []
    for r in row_labels:
        cells = []
        for c in col_labels:
            value = counts.get((r, c), 0)
            alpha = 0.08 + 0.85 * (value / peak) if value else 0.0
            ink = "#fff" if alpha > 0.55 else "#1d2733"
            stay = " stay" if r == c else ""
            cells.append(
                f'<td class="num cell{stay}" style="background: rgba(47,109,181,{alpha:.2f}); color: {ink}">'
                f"{value if value else ''}</td>"
            )
        rows.append(f"<tr><th>{_esc(r)}</th>{''.join(cells)}</tr>")
    return f'<table id="{_esc(table_id)}" class="heatmap"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


# ---------------------------------------------------------------- small aggregates read from the lake


def _table(spark: SparkSession, cfg: Config, name: str) -> DataFrame:
    if not lake.exists(spark, cfg, name):
        raise NotComputed(f"{name} not computed yet")
    return lake.read(spark, cfg, name)


def _snapshot_date(df: DataFrame, as_of: date, name: str) -> date:
    # One aggregated value; bounded.
    newest = df.where(F.col("as_of") <= F.lit(as_of)).agg(F.max("as_of")).head()[0]
    if newest is None:
        raise NotComputed(f"{name} has no snapshot on or before {as_of.isoformat()}")
    return newest


def segment_sizes(spark: SparkSession, cfg: Config, as_of: date) -> tuple[date, list[dict]]:
    """(snapshot date, one row per segment: customers, share, average monetary, average recency)."""
    rfm = _table(spark, cfg, "gold.customer_rfm")
    snapshot = _snapshot_date(rfm, as_of, "gold.customer_rfm")
    # Bounded: one row per segment (eleven by the default rules).
    rows = (
        rfm.where(F.col("as_of") == F.lit(snapshot))
        .groupBy("segment")
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.avg(F.col("monetary").cast("double")).alias("avg_monetary"),
            F.avg("recency_days").alias("avg_recency_days"),
            F.avg("frequency").alias("avg_frequency"),
        )
        .collect()
    )
    return snapshot, [r.asDict() for r in rows]


def segment_move_counts(
    spark: SparkSession, cfg: Config, as_of: date
) -> tuple[date, date | None, list[dict]]:
    """(snapshot, previous snapshot, one row per previous_segment x segment with its customers)."""
    moves = _table(spark, cfg, "gold.segment_moves")
    snapshot = _snapshot_date(moves, as_of, "gold.segment_moves")
    # Bounded: at most (segments + 1)^2 rows.
    rows = [r.asDict() for r in moves.where(F.col("as_of") == F.lit(snapshot)).collect()]
    previous = next((r["previous_as_of"] for r in rows if r.get("previous_as_of")), None)
    return snapshot, previous, rows


def channel_days(spark: SparkSession, cfg: Config, as_of: date) -> tuple[date, list[dict]]:
    """(snapshot, one row per day x channel: sales, orders, aov, pickup orders, active customers)."""
    kpis = _table(spark, cfg, "gold.channel_kpis")
    snapshot = _snapshot_date(kpis, as_of, "gold.channel_kpis")
    # Bounded: one row per day x channel (four channels).
    rows = (
        kpis.where(F.col("as_of") == F.lit(snapshot))
        .select(
            "day",
            "channel",
            F.col("sales").cast("double").alias("sales"),
            F.col("gross_sales").cast("double").alias("gross_sales"),
            "orders",
            F.col("aov").cast("double").alias("aov"),
            (F.coalesce(F.col("pickup_share"), F.lit(0.0)) * F.col("orders")).alias("pickup_orders"),
            "active_customers",
            "new_customers",
        )
        .orderBy("day", "channel")
        .collect()
    )
    return snapshot, [r.asDict() for r in rows]


def model_metric_rows(spark: SparkSession, cfg: Config, as_of: date) -> tuple[dict, list[dict]]:
    """(the run's as_of / run_id / model_version, one row per model x metric on the test split of the newest run)."""
    metrics = _table(spark, cfg, "gold.model_metrics")
    # One row: the newest training run on or before as_of; bounded.
    newest = (
        metrics.where(F.col("as_of") <= F.lit(as_of))
        .select("as_of", "run_id", "model_version")
        .orderBy(F.col("as_of").desc(), F.col("run_id").desc())
        .head()
    )
    if newest is None:
        raise NotComputed(f"gold.model_metrics has no run on or before {as_of.isoformat()}")
    # Bounded: one row per model x metric of one run.
    rows = (
        metrics.where((F.col("run_id") == newest["run_id"]) & (F.col("split") == "test"))
        .select("model", "metric", "k", "value", "customers")
        .collect()
    )
    return newest.asDict(), [r.asDict() for r in rows]


def quality_summary(spark: SparkSession, cfg: Config, as_of: date) -> tuple[list[dict], list[dict]]:
    """(per table: checks passed / failed critical / failed warn / accepted, the failed checks themselves)."""
    results = _table(spark, cfg, "ops.dq_results")
    on_date = results.where(F.col("as_of") == F.lit(as_of))
    # One value; bounded.
    if on_date.isEmpty():
        on_date = results
    failed = ~F.coalesce(F.col("success"), F.lit(False))
    # Bounded: one row per table.
    per_table = (
        on_date.groupBy("table_name")
        .agg(
            F.count(F.lit(1)).alias("checks"),
            F.sum(F.when(~failed, 1).otherwise(0)).alias("passed"),
            F.sum(F.when(failed & (F.col("severity") == "critical"), 1).otherwise(0)).alias(
                "failed_critical"
            ),
            F.sum(F.when(failed & (F.col("severity") != "critical"), 1).otherwise(0)).alias("failed_warn"),
            F.sum(F.when(F.coalesce(F.col("accepted_by_operator"), F.lit(False)), 1).otherwise(0)).alias(
                "accepted"
            ),
            F.max("checked_at").alias("last_checked"),
        )
        .orderBy("table_name")
        .collect()
    )
    # Bounded: at most 25 rows.
    failures = (
        on_date.where(failed)
        .select("table_name", "expectation", "severity", "observed_value", "unexpected_count", "checked_at")
        .orderBy(F.col("checked_at").desc())
        .limit(25)
        .collect()
    )
    return [r.asDict() for r in per_table], [r.asDict() for r in failures]


def recent_runs(spark: SparkSession, cfg: Config, limit: int = 30) -> list[dict]:
    """The newest `limit` rows of ops.pipeline_runs."""
    runs = _table(spark, cfg, "ops.pipeline_runs")
    # Bounded by `limit`.
    return [
        r.asDict()
        for r in runs.select(
            "stage",
            "as_of",
            "status",
            "started_at",
            "duration_s",
            "rows_in",
            "rows_out",
            "rows_rejected",
            "error",
        )
        .orderBy(F.col("started_at").desc())
        .limit(limit)
        .collect()
    ]


def table_versions(spark: SparkSession, cfg: Config) -> list[dict]:
    """Per existing table: current version, last operation and time, rows."""
    return lake.table_status(spark, cfg, contracts.all_tables())


# ---------------------------------------------------------------- sections (aggregates -> HTML)


def _ordered_segments(cfg: Config, present: Sequence[str]) -> list[str]:
    """Segments in the rules file's order (best first), then any others."""
    try:
        from o2o.gold.segments import load_segment_rules

        order = list(load_segment_rules(cfg.resolve(cfg.gold.segments_file)).segment_names())
    except Exception:  # the rules file is optional for drawing; fall back to the data's own order
        order = []
    return [s for s in order if s in present] + sorted(s for s in present if s not in order)


def section_segments(reads: LakeReads) -> str:
    snapshot, rows = reads(segment_sizes)
    by_name = {r["segment"] or "(none)": r for r in rows}
    names = _ordered_segments(reads.cfg, list(by_name))
    total = sum(r["customers"] for r in rows) or 1
    chart = bar_chart_svg(
        [(n, float(by_name[n]["customers"])) for n in names],
        "segment-sizes",
        f"Customers per RFM segment, snapshot {snapshot.isoformat()}",
        value_label=lambda v: f"{v:,.0f}  ({100 * v / total:.0f}%)",
        width=540,
    )
    table = html_table(
        ["segment", "customers", "avg recency (days)", "avg orders", "avg net spend"],
        [
            (
                n,
                f"{by_name[n]['customers']:,}",
                f"{by_name[n]['avg_recency_days'] or 0:.1f}",
                f"{by_name[n]['avg_frequency'] or 0:.2f}",
                f"{by_name[n]['avg_monetary'] or 0:,.2f}",
            )
            for n in names
        ],
        table_id="segment-table",
    )
    return f'<div class="pair"><div>{chart}</div><div>{table}</div></div>'


def section_moves(reads: LakeReads) -> str:
    snapshot, previous, rows = reads(segment_move_counts)
    counts = {(r["previous_segment"] or NEW, r["segment"] or GONE): int(r["customers"] or 0) for r in rows}
    present = {r["previous_segment"] for r in rows} | {r["segment"] for r in rows}
    names = _ordered_segments(reads.cfg, [s for s in present if s])
    stayed = sum(v for (p, s), v in counts.items() if p == s)
    moved = sum(v for (p, s), v in counts.items() if p != s and p != NEW and s != GONE)
    new = sum(v for (p, _), v in counts.items() if p == NEW)
    gone = sum(v for (_, s), v in counts.items() if s == GONE)
    since = f"since {previous.isoformat()}" if previous else "(first snapshot: everyone is new)"
    summary = (
        f'<p class="note">Snapshot {snapshot.isoformat()} {since}: <b>{stayed:,}</b> stayed in their segment, '
        f"<b>{moved:,}</b> moved, <b>{new:,}</b> new, <b>{gone:,}</b> left the look-back window. "
        "Rows: segment before; columns: segment now.</p>"
    )
    matrix = heatmap_table([*names, NEW], [*names, GONE], counts, "segment-moves", "before \\ now")
    return summary + f'<div class="scroll">{matrix}</div>'


def section_channels(reads: LakeReads) -> str:
    snapshot, rows = reads(channel_days)
    if not rows:
        raise NotComputed(f"gold.channel_kpis has no rows for {snapshot.isoformat()}")
    days = sorted({r["day"] for r in rows})
    channels = [c for c in contracts.CHANNELS if any(r["channel"] == c for r in rows)]
    channels += sorted({r["channel"] for r in rows} - set(channels))
    cell = {(r["day"], r["channel"]): r for r in rows}
    labels = [d.strftime("%m-%d") for d in days]

    def series(column: str) -> dict[str, list[float | None]]:
        return {
            c: [
                float(cell[(d, c)][column]) if (d, c) in cell and cell[(d, c)][column] is not None else None
                for d in days
            ]
            for c in channels
        }

    orders_per_day = [sum(cell[(d, c)]["orders"] or 0 for c in channels if (d, c) in cell) for d in days]
    pickup_per_day = [
        sum(cell[(d, c)]["pickup_orders"] or 0 for c in channels if (d, c) in cell) for d in days
    ]
    online = [c for c in channels if c in contracts.ONLINE_CHANNELS]
    online_orders = [sum(cell[(d, c)]["orders"] or 0 for c in online if (d, c) in cell) for d in days]
    pickup_share = {
        "pick-up / all orders": [
            100 * p / o if o else None for p, o in zip(pickup_per_day, orders_per_day, strict=True)
        ],
        "pick-up / online orders": [
            100 * p / o if o else None for p, o in zip(pickup_per_day, online_orders, strict=True)
        ],
    }
    sales = line_chart_svg(
        labels, series("sales"), "channel-sales", "Net sales per day and channel", CHANNEL_COLOURS, width=1150
    )
    aov = line_chart_svg(
        labels,
        series("aov"),
        "channel-aov",
        "Average order value per day and channel",
        CHANNEL_COLOURS,
        width=565,
    )
    pickup = line_chart_svg(
        labels,
        pickup_share,
        "pickup-share",
        "Buy online, pick up in store: share of orders (%)",
        {"pick-up / all orders": "#3a9e6f", "pick-up / online orders": "#c44e52"},
        y_format=lambda v: f"{v:g}%",
        width=565,
    )
    charts = [sales, f'<div class="pair"><div>{aov}</div><div>{pickup}</div></div>']
    totals = []
    for c in channels:
        mine = [cell[(d, c)] for d in days if (d, c) in cell]
        sales = sum(r["sales"] or 0 for r in mine)
        gross = sum(r["gross_sales"] or 0 for r in mine)
        orders = sum(r["orders"] or 0 for r in mine)
        pickups = sum(r["pickup_orders"] or 0 for r in mine)
        totals.append(
            (
                c,
                f"{sales:,.2f}",
                f"{orders:,}",
                f"{gross / orders:,.2f}" if orders else "–",
                f"{100 * pickups / orders:.1f}%" if orders else "–",
                f"{sum(r['new_customers'] or 0 for r in mine):,}",
            )
        )
    table = html_table(
        ["channel", "net sales", "orders", "AOV", "pick-up share", "new customers"], totals, "channel-totals"
    )
    period = f"{days[0].isoformat()} to {days[-1].isoformat()} (snapshot {snapshot.isoformat()})"
    return f'<p class="note">{period}</p>' + "".join(charts) + table


def section_models(reads: LakeReads) -> str:
    run, rows = reads(model_metric_rows)
    if not rows:
        raise NotComputed("gold.model_metrics has no test-split rows for the newest run")
    models = [m for m in MODEL_ORDER if any(r["model"] == m for r in rows)]
    models += sorted({r["model"] for r in rows} - set(models))
    metrics = [m for m in (*RANKING_METRICS, "rmse", "mae") if any(r["metric"] == m for r in rows)]
    metrics += sorted({r["metric"] for r in rows} - set(metrics))
    value = {(r["model"], r["metric"]): r for r in rows}
    k = next((r["k"] for r in rows if r["k"]), reads.cfg.reco.k)

    def label(metric: str) -> str:
        return METRIC_LABELS.get(metric, metric).format(k=k)

    table_rows = []
    for m in models:
        cells = [
            f"{value[(m, x)]['value']:.4f}" if (m, x) in value and value[(m, x)]["value"] is not None else "–"
            for x in metrics
        ]
        evaluated = max((value[(m, x)]["customers"] or 0 for x in metrics if (m, x) in value), default=0)
        table_rows.append((m, *cells, f"{evaluated:,}"))
    table = html_table(["model", *[label(x) for x in metrics], "evaluated"], table_rows, "model-metrics")
    ranking = [x for x in metrics if x in RANKING_METRICS]
    chart = grouped_bar_svg(
        [label(x) for x in ranking],
        {m: [value[(m, x)]["value"] if (m, x) in value else None for x in ranking] for m in models},
        "model-ndcg",
        f"ALS against baselines on the test split (higher is better, k = {k})",
    )
    best_baseline = max(
        (
            (value[(m, "ndcg_at_k")]["value"] or 0.0, m)
            for m in models
            if not m.startswith("als") and (m, "ndcg_at_k") in value
        ),
        default=None,
    )
    als_ndcg = value.get(("als", "ndcg_at_k"), {}).get("value") if ("als", "ndcg_at_k") in value else None
    verdict = ""
    if best_baseline and als_ndcg is not None:
        lift = f": {(als_ndcg / best_baseline[0] - 1) * 100:+.0f}%" if best_baseline[0] else ""
        word = "beats" if als_ndcg > best_baseline[0] else "does not beat"
        verdict = (
            f" ALS NDCG@{k} {als_ndcg:.4f} {word} the best baseline ({_esc(best_baseline[1])}, "
            f"{best_baseline[0]:.4f}){lift}."
        )
    note = (
        f'<p class="note">Model {_esc(run["model_version"])}, trained for {run["as_of"].isoformat()} '
        f"(run {_esc(run['run_id'])}).{verdict}</p>"
    )
    return note + table + chart


def section_quality(reads: LakeReads) -> str:
    per_table, failures = reads(quality_summary)
    checks = sum(r["checks"] for r in per_table)
    passed = sum(r["passed"] for r in per_table)
    rows = [
        (
            r["table_name"],
            r["checks"],
            r["passed"],
            r["failed_critical"],
            r["failed_warn"],
            r["accepted"],
            _when(r["last_checked"]),
        )
        for r in per_table
    ]
    table = html_table(
        ["table", "checks", "passed", "failed (critical)", "failed (warn)", "accepted", "last checked (UTC)"],
        rows,
        "dq-summary",
    )
    note = f'<p class="note"><b>{passed:,}</b> of <b>{checks:,}</b> check results passed.</p>'
    if failures:
        table += "<h3>Checks that did not pass</h3>" + html_table(
            ["table", "expectation", "severity", "observed", "unexpected rows", "checked (UTC)"],
            [
                (
                    f["table_name"],
                    f["expectation"],
                    f["severity"],
                    _short(f["observed_value"]),
                    f["unexpected_count"] if f["unexpected_count"] is not None else "",
                    _when(f["checked_at"]),
                )
                for f in failures
            ],
            "dq-failures",
            numeric_from=4,
        )
    return note + table


def section_runs(reads: LakeReads) -> str:
    rows = recent_runs(reads.spark, reads.cfg)
    return html_table(
        ["stage", "as of", "status", "started (UTC)", "seconds", "rows in", "rows out", "rejected", "error"],
        [
            (
                r["stage"],
                r["as_of"],
                r["status"],
                _when(r["started_at"]),
                f"{r['duration_s'] or 0:.1f}",
                f"{r['rows_in'] or 0:,}",
                f"{r['rows_out'] or 0:,}",
                f"{r['rows_rejected'] or 0:,}",
                _short(r["error"]),
            )
            for r in rows
        ],
        "pipeline-runs",
        numeric_from=4,
    )


def section_tables(reads: LakeReads) -> str:
    return tables_html(reads.tables())


def tables_html(rows: Sequence[dict]) -> str:
    """The table-versions section from table_versions' rows."""
    if not rows:
        raise NotComputed("the lake holds no tables yet")
    return html_table(
        ["table", "version", "rows", "last operation", "last write (UTC)"],
        [(r["table"], r["version"], f"{r['rows']:,}", r["operation"], _when(r["written"])) for r in rows],
        "table-versions",
        numeric_from=1,
    )


def _when(value: object) -> str:
    return (
        value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, datetime)
        else ("" if value is None else str(value))
    )


def _short(value: object, width: int = 70) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------- page


@dataclass(frozen=True)
class Section:
    """One part of the page: its anchor, heading, one-line purpose and the function that draws it."""

    anchor: str
    title: str
    purpose: str
    draw: Callable[[LakeReads], str]


SECTIONS = (
    Section("segments", "RFM segments", "Who the customers are now: size of each segment.", section_segments),
    Section("moves", "Segment moves", "Where customers went since the previous snapshot.", section_moves),
    Section(
        "channels",
        "Channel KPIs",
        "Daily sales, order value and pick-up in store by channel.",
        section_channels,
    ),
    Section(
        "models", "Recommendation model", "ALS against simple baselines on held-out days.", section_models
    ),
    Section("quality", "Data quality", "Great Expectations results of the quality gates.", section_quality),
    Section("runs", "Pipeline runs", "The newest stage runs from ops.pipeline_runs.", section_runs),
    Section(
        "tables", "Table versions", "Every Delta table: current version, rows, last write.", section_tables
    ),
)

STYLE = """
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1d2733; background: #f4f6f9;
       margin: 0; }
header { background: #1f3b5c; color: #fff; padding: 22px 40px 18px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 600; }
header p { margin: 0; color: #c9d6e6; font-size: 14px; }
nav { padding: 10px 40px; background: #e8edf3; font-size: 14px; }
nav a { margin-right: 18px; color: #1f3b5c; text-decoration: none; }
main { padding: 8px 40px 40px; max-width: 1320px; }
section { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.08); margin: 18px 0;
          padding: 16px 22px 20px; }
section h2 { margin: 0 0 2px; font-size: 20px; color: #1f3b5c; }
section h3 { font-size: 15px; margin: 18px 0 6px; }
.purpose { margin: 0 0 12px; color: #5b6b7c; font-size: 14px; }
.note { font-size: 14px; margin: 6px 0 12px; }
.missing { color: #8a6d3b; background: #fcf8e3; border-radius: 6px; padding: 10px 14px; font-size: 14px; }
.pair { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 10px; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e3e8ee; text-align: left; white-space: nowrap; }
thead th { background: #f0f3f7; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.heatmap td.cell { min-width: 44px; text-align: center; border: 1px solid #fff; }
table.heatmap td.stay { outline: 2px solid #1f3b5c; outline-offset: -2px; }
table.heatmap th.rot { font-size: 12px; white-space: normal; max-width: 80px; text-align: center; }
table.heatmap th.corner { color: #5b6b7c; font-weight: normal; font-size: 12px; }
.tiles { display: flex; flex-wrap: wrap; gap: 14px; margin: 18px 0 4px; }
.tile { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: 12px 18px;
        min-width: 170px; }
.tile .big { font-size: 24px; font-weight: 600; color: #1f3b5c; }
.tile .small { font-size: 13px; color: #5b6b7c; }
svg.chart { display: block; margin: 8px 0 14px; font-family: inherit; }
svg .chart-title { font-size: 15px; font-weight: 600; fill: #1d2733; }
svg .label { font-size: 13px; fill: #1d2733; }
svg .value { font-size: 12px; fill: #5b6b7c; }
svg .tick { font-size: 11px; fill: #5b6b7c; }
svg .legend { font-size: 12px; fill: #1d2733; }
svg .grid { stroke: #e3e8ee; stroke-width: 1; }
svg .axis { stroke: #9aa7b5; stroke-width: 1; }
"""


def _tiles(reads: LakeReads) -> str:
    """Headline numbers from the sections' reads; each tile is left out when its table is missing."""
    tiles = []
    try:
        _, rows = reads(segment_sizes)
        tiles.append((f"{sum(r['customers'] for r in rows):,}", "customers with a purchase (RFM)"))
    except NotComputed:
        pass
    try:
        _, rows = reads(channel_days)
        tiles.append((fmt_number(sum(r["sales"] or 0 for r in rows)), "net sales, all channels"))
        tiles.append((f"{sum(r['orders'] or 0 for r in rows):,}", "orders, all channels"))
    except NotComputed:
        pass
    try:
        _, rows = reads(model_metric_rows)
        ndcg = {r["model"]: r["value"] for r in rows if r["metric"] == "ndcg_at_k" and r["value"] is not None}
        if "als" in ndcg:
            tiles.append((f"{ndcg['als']:.3f}", "ALS NDCG@k on the test days"))
    except NotComputed:
        pass
    try:
        per_table, _ = reads(quality_summary)
        failed = sum(r["failed_critical"] + r["failed_warn"] for r in per_table)
        tiles.append(
            (f"{sum(r['passed'] for r in per_table):,} / {failed:,}", "quality checks passed / failed")
        )
    except NotComputed:
        pass
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile"><div class="big">{_esc(big)}</div><div class="small">{_esc(small)}</div></div>'
            for big, small in tiles
        )
        + "</div>"
    )


def render_page(cfg: Config, as_of: date, body_sections: Sequence[tuple[Section, str]], tiles: str) -> str:
    """The whole HTML document around already drawn sections."""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{s.anchor}">{_esc(s.title)}</a>' for s, _ in body_sections)
    sections = "".join(
        f'<section id="{s.anchor}"><h2>{_esc(s.title)}</h2><p class="purpose">{_esc(s.purpose)}</p>{content}</section>'
        for s, content in body_sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>O2O lakehouse report {as_of.isoformat()}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>O2O lakehouse: demo report</h1><p>as of {as_of.isoformat()} &middot; environment "
        f"{_esc(cfg.env)} &middot; lake {_esc(cfg.resolve(cfg.lake.root))} &middot; generated {generated}</p></header>"
        f"<nav>{nav}</nav><main>{tiles}{sections}</main></body></html>"
    )


def build_report(spark: SparkSession, cfg: Config, as_of: date, tables: Sequence[dict] | None = None) -> str:
    """Write <reports dir>/demo_report.html about the lake as of `as_of` and return its path.

    Every section reads small aggregates only; a section whose table is missing says "not computed yet",
    and one that fails to draw shows its error instead of stopping the report. `tables`: table_versions'
    rows when the caller already has them.
    """
    reads = LakeReads(spark, cfg, as_of, tables)
    drawn = []
    for section in SECTIONS:
        try:
            content = section.draw(reads)
        except NotComputed as missing:
            content = f'<p class="missing">Not computed yet: {_esc(missing)}.</p>'
        except Exception as exc:  # a broken section must not cost the rest of the report
            content = (
                f'<p class="missing">Could not draw this section: {_esc(type(exc).__name__)}: {_esc(exc)}</p>'
            )
        drawn.append((section, content))
    page = render_page(cfg, as_of, drawn, _tiles(reads))
    folder = lake.reports_dir(cfg)
    if "://" in folder:
        raise ValueError(
            f"the demo report is written with local file I/O, but the reports folder is {folder}; "
            "set lake.reports to a local folder"
        )
    path = Path(folder) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return str(path)
