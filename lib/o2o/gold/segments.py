"""RFM segment rules (conf/rfm_segments.yaml): loading with gap/overlap checks, assignment, and segment moves."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyspark.sql.functions as F
import yaml
from pyspark.sql import Column, DataFrame, Window

SCORES = (1, 2, 3, 4, 5)
LEVELS = ("high", "low")


class SegmentRuleError(ValueError):
    """The segment rules file is malformed, leaves a score combination unassigned, or assigns one twice."""


@dataclass(frozen=True)
class ScoreSegment:
    """A segment of the score model: the union of boxes (r_lo, r_hi, fm_lo, fm_hi) on the R x FM grid."""

    name: str
    boxes: tuple[tuple[int, int, int, int], ...]

    def matches(self, r: int, fm: int) -> bool:
        return any(r_lo <= r <= r_hi and fm_lo <= fm <= fm_hi for r_lo, r_hi, fm_lo, fm_hi in self.boxes)


@dataclass(frozen=True)
class ValueClass:
    """A class of the value model: R, F and M each 'high', 'low' or 'any' against the population mean."""

    name: str
    name_cn: str
    r: str
    f: str
    m: str

    def matches(self, r: str, f: str, m: str) -> bool:
        return all(rule in ("any", level) for rule, level in ((self.r, r), (self.f, f), (self.m, m)))


@dataclass(frozen=True)
class SegmentRules:
    """Both schemes: the 11-segment score model and the 8-class value model."""

    score_segments: tuple[ScoreSegment, ...]
    value_classes: tuple[ValueClass, ...]
    reference: str = "mean"

    def segment_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.score_segments)

    def value_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.value_classes)


def _range(value: object, where: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not 1 <= value[0] <= value[1] <= 5
    ):
        raise SegmentRuleError(
            f"{where}: a range must be [low, high] with 1 <= low <= high <= 5, got {value!r}"
        )
    return value[0], value[1]


def parse_segment_rules(data: dict, source: str = "segment rules") -> SegmentRules:
    """Rules from the parsed YAML mapping; raises SegmentRuleError naming every gap and overlap cell."""
    if not isinstance(data, dict) or "score_segments" not in data or "value_segments" not in data:
        raise SegmentRuleError(f"{source}: needs the sections 'score_segments' and 'value_segments'")
    segments = []
    for i, item in enumerate((data["score_segments"] or {}).get("segments") or []):
        where = f"{source}: score_segments.segments[{i}]"
        if not isinstance(item, dict) or not item.get("name"):
            raise SegmentRuleError(f"{where}: each segment needs a name")
        boxes = item.get("cells") or [{"r": item.get("r"), "fm": item.get("fm")}]
        parsed = tuple(
            (
                *_range(box.get("r"), f"{where} ({item['name']}) r"),
                *_range(box.get("fm"), f"{where} ({item['name']}) fm"),
            )
            for box in boxes
        )
        segments.append(ScoreSegment(str(item["name"]), parsed))
    value_section = data["value_segments"] or {}
    reference = value_section.get("reference", "mean")
    if reference != "mean":
        raise SegmentRuleError(f"{source}: value_segments.reference must be 'mean', got {reference!r}")
    classes = []
    for i, item in enumerate(value_section.get("classes") or []):
        where = f"{source}: value_segments.classes[{i}]"
        if not isinstance(item, dict) or not item.get("name") or not item.get("name_cn"):
            raise SegmentRuleError(f"{where}: each class needs name and name_cn")
        levels = {axis: str(item.get(axis, "any")) for axis in ("r", "f", "m")}
        for axis, level in levels.items():
            if level not in (*LEVELS, "any"):
                raise SegmentRuleError(
                    f"{where} ({item['name']}): {axis} must be high, low or any, got {level!r}"
                )
        classes.append(ValueClass(str(item["name"]), str(item["name_cn"]), **levels))
    rules = SegmentRules(tuple(segments), tuple(classes), reference)
    _check_complete(rules, source)
    return rules


def _check_complete(rules: SegmentRules, source: str) -> None:
    problems = []
    for r, fm in itertools.product(SCORES, SCORES):
        names = [s.name for s in rules.score_segments if s.matches(r, fm)]
        if not names:
            problems.append(f"gap: score cell r_score={r}, fm_score={fm} matches no segment")
        elif len(names) > 1:
            problems.append(f"overlap: score cell r_score={r}, fm_score={fm} matches {', '.join(names)}")
    for r, f, m in itertools.product(LEVELS, LEVELS, LEVELS):
        names = [c.name for c in rules.value_classes if c.matches(r, f, m)]
        if not names:
            problems.append(f"gap: value cell r={r}, f={f}, m={m} matches no class")
        elif len(names) > 1:
            problems.append(f"overlap: value cell r={r}, f={f}, m={m} matches {', '.join(names)}")
    for label, names in (("segment", rules.segment_names()), ("value class", rules.value_names())):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"{label} name used twice: {', '.join(duplicates)}")
    if problems:
        raise SegmentRuleError(
            f"{source}: every score combination must map to exactly one segment; " + "; ".join(problems)
        )


def load_segment_rules(path: str | Path) -> SegmentRules:
    """Load and validate conf/rfm_segments.yaml; the error names the file and every gap or overlap."""
    path = Path(path)
    if not path.exists():
        raise SegmentRuleError(f"{path}: segment rules file not found (gold.segments_file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SegmentRuleError(f"{path}: not valid YAML: {exc}") from exc
    return parse_segment_rules(data, str(path))


def _score_segment_expr(rules: SegmentRules) -> Column:
    expr = None
    for segment in rules.score_segments:
        condition = None
        for r_lo, r_hi, fm_lo, fm_hi in segment.boxes:
            box = F.col("r_score").between(r_lo, r_hi) & F.col("fm_score").between(fm_lo, fm_hi)
            condition = box if condition is None else condition | box
        expr = (
            F.when(condition, F.lit(segment.name))
            if expr is None
            else expr.when(condition, F.lit(segment.name))
        )
    return expr


def _value_class_expr(rules: SegmentRules, attribute: str) -> Column:
    expr = None
    for value_class in rules.value_classes:
        condition = F.lit(True)
        for axis, level in (("r", value_class.r), ("f", value_class.f), ("m", value_class.m)):
            if level != "any":
                flag = F.col(f"{axis}_high")
                condition = condition & (flag if level == "high" else ~flag)
        label = F.lit(getattr(value_class, attribute))
        expr = F.when(condition, label) if expr is None else expr.when(condition, label)
    return expr


def assign_segments(scored: DataFrame, rules: SegmentRules) -> DataFrame:
    """Adds segment (score model on r_score x fm_score) and value_segment / value_segment_cn (r/f/m_high)."""
    return (
        scored.withColumn("segment", _score_segment_expr(rules))
        .withColumn("value_segment", _value_class_expr(rules, "name"))
        .withColumn("value_segment_cn", _value_class_expr(rules, "name_cn"))
    )


def segment_move_customers(
    current: DataFrame, previous: DataFrame, as_of: date, previous_as_of: date | None
) -> DataFrame:
    """Each customer of either snapshot with the segment before and now (lag/lead over as_of).

    `current` and `previous` hold customer_key and segment (previous may be empty). Out: as_of,
    previous_as_of, customer_key, previous_segment (null: new in this snapshot), segment (null: dropped
    out of the look-back window since the previous snapshot).
    """
    snapshots = current.select("customer_key", "segment", F.lit(as_of).alias("snapshot")).unionByName(
        previous.select("customer_key", "segment", F.lit(previous_as_of).cast("date").alias("snapshot"))
    )
    by_customer = Window.partitionBy("customer_key").orderBy("snapshot")
    return (
        snapshots.withColumn("previous_segment", F.lag("segment").over(by_customer))
        .withColumn("next_snapshot", F.lead("snapshot").over(by_customer))
        .where((F.col("snapshot") == F.lit(as_of)) | F.col("next_snapshot").isNull())
        .select(
            F.lit(as_of).alias("as_of"),
            F.lit(previous_as_of).cast("date").alias("previous_as_of"),
            "customer_key",
            F.when(F.col("snapshot") == F.lit(as_of), F.col("previous_segment"))
            .otherwise(F.col("segment"))
            .alias("previous_segment"),
            F.when(F.col("snapshot") == F.lit(as_of), F.col("segment")).alias("segment"),
        )
    )


def segment_moves(move_customers: DataFrame) -> DataFrame:
    """Customers per (previous_segment, segment) move. Out: as_of, previous_as_of, previous_segment, segment, customers."""
    return move_customers.groupBy("as_of", "previous_as_of", "previous_segment", "segment").agg(
        F.count(F.lit(1)).alias("customers")
    )
