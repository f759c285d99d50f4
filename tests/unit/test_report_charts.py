"""The report's SVG charts (no Spark): scales, bar sizes, gaps in lines, escaping."""

import re

from o2o.report import bar_chart_svg, grouped_bar_svg, line_chart_svg, nice_ticks


def _numbers(svg: str, element: str, attribute: str) -> list[float]:
    return [float(v) for v in re.findall(rf'<{element} [^>]*?\b{attribute}="([-\d.]+)"', svg)]


def test_ticks_are_round_steps_from_zero_to_at_least_the_top():
    assert nice_ticks(2.0) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert nice_ticks(930.0) == [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]
    assert nice_ticks(0.0) == [0.0, 1.0]


def test_grouped_bars_are_as_tall_as_their_value_on_the_axis_and_missing_values_draw_nothing():
    # Plot height 300 - 58 (top) - 34 (bottom) = 208 px for the axis 0..2 (ticks of 0.5).
    svg = grouped_bar_svg(["w1", "w2"], {"als": [2.0, 1.0], "popular": [0.5, None]}, "m", "Metrics")

    heights = _numbers(svg, "rect", "height")
    assert heights[:2] == [12.0, 12.0]  # the legend's two swatches
    assert heights[2:] == [208.0, 52.0, 104.0]  # als w1, popular w1, als w2; popular w2 is missing
    assert re.findall(r'class="tick">([^<]+)<', svg) == ["0", "0.5", "1", "1.5", "2"]
    assert svg.startswith('<svg id="m" class="chart"') and svg.endswith("</svg>")


def test_a_line_breaks_where_a_value_is_missing_and_labels_are_escaped():
    svg = line_chart_svg(["d1", "d2", "d3", "d4"], {"<rev>": [1.0, None, 3.0, 4.0]}, "l", "A & B")

    assert svg.count("<polyline") == 1  # d3-d4; d1 alone is a point, not a line
    assert svg.count("<circle") == 3
    assert "&lt;rev&gt;" in svg and "<rev>" not in svg
    assert 'aria-label="A &amp; B"' in svg


def test_horizontal_bars_scale_to_the_largest_value():
    svg = bar_chart_svg([("Champions", 50.0), ("Lost", 25.0), ("New", 0.0)], "s", "Segments", width=640)

    # Bar span 640 - 170 - 70 = 400 px; a zero still shows one pixel.
    assert _numbers(svg, "rect", "width") == [400.0, 200.0, 1.0]
