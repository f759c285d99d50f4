"""The demo report: an HTML page that headless Chromium renders, holding the segment chart and the metrics table."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pyspark.sql.functions as F
import pytest

from browser import require_chromium
from o2o import lake
from o2o.report import build_report

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
WIDTH, HEIGHT = 1400, 3000


class Elements(HTMLParser):
    """Every element of a document as (tag, attributes, ids of its open ancestors)."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "col", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict, tuple[str, ...]]] = []
        self._open: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.elements.append((tag, attributes, tuple(i for _, i in self._open if i)))
        if tag not in self.VOID:
            self._open.append((tag, attributes.get("id", "")))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), tuple(i for _, i in self._open if i)))

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def inside(self, element_id: str, tag: str) -> list[dict]:
        return [attrs for t, attrs, ancestors in self.elements if t == tag and element_id in ancestors]

    def by_id(self, element_id: str) -> list[str]:
        return [t for t, attrs, _ in self.elements if attrs.get("id") == element_id]


def _run_browser(args: list[str], timeout: int = 240) -> str:
    """Run Chromium in its own process group; on a timeout end that group (only the browser we started)."""
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium did not finish within {timeout}s: {' '.join(args)}")
    assert process.returncode == 0, f"chromium failed ({process.returncode}): {err[-2000:]}"
    return out


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_report_renders_in_headless_chromium(spark, trained_sample_lake, tmp_path):
    cfg, as_of = trained_sample_lake.cfg, trained_sample_lake.as_of
    path = Path(build_report(spark, cfg, as_of))
    assert path == Path(lake.reports_dir(cfg)) / "demo_report.html"
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")

    browser = require_chromium()
    common = [
        browser,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
    ]
    screenshot = tmp_path / "report.png"
    _run_browser([*common, f"--screenshot={screenshot}", path.as_uri()])
    dom = _run_browser([*common, "--dump-dom", path.as_uri()])

    assert screenshot.exists(), "chromium wrote no screenshot"
    assert _png_size(screenshot) == (WIDTH, HEIGHT)
    # A blank or error page of this size compresses to a few kB; charts, tables and text do not.
    assert screenshot.stat().st_size > 60_000, f"screenshot is only {screenshot.stat().st_size} bytes"
    shutil.copy(screenshot, path.with_suffix(".png"))  # next to the report, for a person to look at

    parsed = Elements()
    parsed.feed(dom)
    rfm = lake.read(spark, cfg, "gold.customer_rfm")
    # Expected values straight from the tables (few rows: one per segment / model).
    segments = rfm.where(F.col("as_of") == F.lit(as_of)).select("segment").distinct().count()
    models = (
        lake.read(spark, cfg, "gold.model_metrics")
        .where((F.col("as_of") == F.lit(as_of)) & (F.col("split") == "test"))
        .select("model")
        .distinct()
        .count()
    )
    assert parsed.by_id("segment-sizes") == ["svg"], "no svg#segment-sizes in the rendered page"
    assert len(parsed.inside("segment-sizes", "rect")) == segments, "one bar per segment expected"
    assert parsed.by_id("model-metrics") == ["table"], "no table#model-metrics in the rendered page"
    assert len(parsed.inside("model-metrics", "tr")) == models + 1, (
        "a header row and one row per model expected"
    )
    for chart in ("segment-moves", "channel-sales", "channel-aov", "pickup-share", "model-ndcg"):
        assert parsed.by_id(chart), f"#{chart} missing from the rendered page"
    for table in ("dq-summary", "pipeline-runs", "table-versions"):
        assert parsed.by_id(table), f"#{table} missing from the rendered page"
    assert "Not computed yet" not in dom and "Could not draw" not in dom


def test_report_on_an_empty_lake_says_not_computed_yet(spark, cfg):
    path = Path(build_report(spark, cfg, cfg.generator.start_date))

    page = path.read_text(encoding="utf-8")
    parsed = Elements()
    parsed.feed(page)
    sections = [attrs["id"] for tag, attrs, _ in parsed.elements if tag == "section"]
    assert sections == ["segments", "moves", "channels", "models", "quality", "runs", "tables"]
    assert page.count("Not computed yet") == len(sections)
    assert not parsed.by_id("segment-sizes")
