"""The report's SVG charts and HTML page: well-formed, labelled, escaped, offline, stable."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from rapport.report.charts import NO_DATA, bar_chart, line_chart, stacked_bar_chart
from rapport.report.page import (
    Chart,
    Figure,
    Figures,
    Paragraph,
    Section,
    Table,
    render_page,
)

SVG = "{http://www.w3.org/2000/svg}"
WEEKS = ["2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16"]
HOSTILE = '<script>&"'


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def elements(root: ET.Element, tag: str, cls: str | None = None) -> list[ET.Element]:
    found = root.iter(SVG + tag)
    return [e for e in found if cls is None or e.get("class") == cls]


def texts(root: ET.Element, cls: str | None = None) -> list[str]:
    """Visible text: a text element's own words, without a tooltip nested in it."""
    return [
        "".join(t.itertext()) if not list(t) else (t[0].tail or "")
        for t in elements(root, "text", cls)
    ]


def tooltips(root: ET.Element) -> list[str]:
    return [t.text or "" for t in elements(root, "title")]


def series_group(root: ET.Element, name: str) -> ET.Element:
    return next(g for g in elements(root, "g", "series") if g.get("data-series") == name)


def zero_line_y(root: ET.Element) -> float:
    (line,) = elements(root, "line", "zero-line")
    return float(line.get("y1", "nan"))


def height(root: ET.Element) -> float:
    return float(root.get("viewBox", "").split()[3])


def treated_chart() -> str:
    return line_chart(
        "Customers treated",
        WEEKS,
        {"treated": [0.85, 0.9, 0.912, 0.88, 0.93], "control": [0.6, None, 0.62, 0.64, 0.61]},
        y_label="share of customers",
        percent=True,
    )


# Line charts


def test_line_chart_is_labelled_with_title_axes_legend_and_tooltips() -> None:
    root = parse(treated_chart())

    assert root.get("role") == "img"
    assert root.get("aria-label") == "Customers treated"
    shown = texts(root)
    assert {"Customers treated", "share of customers", "treated", "control"} <= set(shown)
    assert texts(root, "x-tick") == WEEKS
    assert "2026-11-02 · treated: 91.2%" in tooltips(root)
    assert "2026-10-26 · control: 60%" not in tooltips(root)  # a gap has no marker


def test_none_breaks_the_line_into_separate_paths() -> None:
    root = parse(
        line_chart(
            "Gaps",
            ["a", "b", "c", "d", "e", "f", "g"],
            {"whole": [1, 2, 3, 4, 5, 6, 7], "broken": [1, 2, None, 4, 5, None, 7]},
            y_label="n",
        )
    )

    whole = series_group(root, "whole")
    broken = series_group(root, "broken")
    assert len(elements(whole, "path")) == 1
    paths = elements(broken, "path")
    assert len(paths) == 2  # "g" alone is a run of one: a marker, no line
    assert [p.get("d", "").count("M") for p in paths] == [1, 1]
    assert [p.get("d", "").count("L") for p in paths] == [1, 1]
    assert len(elements(broken, "circle")) == 5


def test_percent_ticks_are_whole_percentages() -> None:
    ticks = texts(parse(treated_chart()), "y-tick")

    assert ticks == ["0%", "20%", "40%", "60%", "80%", "100%"]


@pytest.mark.parametrize(
    ("peak", "expected"),
    [
        (87.0, ["0", "20", "40", "60", "80", "100"]),
        (0.7, ["0.0", "0.2", "0.4", "0.6", "0.8"]),
        (12_345.0, ["0", "5,000", "10,000", "15,000"]),
        (2.2, ["0.0", "0.5", "1.0", "1.5", "2.0", "2.5"]),
    ],
)
def test_y_ticks_are_nice_round_numbers(peak: float, expected: list[str]) -> None:
    root = parse(line_chart("Ticks", ["a", "b"], {"v": [peak / 3, peak]}, y_label="n"))

    assert texts(root, "y-tick") == expected


def test_negative_values_get_an_axis_through_zero() -> None:
    root = parse(line_chart("NPS", WEEKS, {"NPS": [-40.0, -12.5, 0.0, 20.0, 60.0]}, y_label="NPS"))

    assert texts(root, "y-tick") == ["-40", "-20", "0", "20", "40", "60"]
    zero = zero_line_y(root)
    heights = [float(c.get("cy", "nan")) for c in elements(series_group(root, "NPS"), "circle")]
    assert heights[0] > heights[1] > zero  # below zero is below the line
    assert heights[2] == pytest.approx(zero)
    assert heights[4] < heights[3] < zero
    assert "2026-10-26 · NPS: -12.5" in tooltips(root)


def test_y_bounds_widen_the_axis_and_may_leave_out_zero() -> None:
    values = {"treated": [0.82, 0.9, 0.88, None, 0.86]}
    zoomed = parse(line_chart("Zoom", WEEKS, values, y_label="%", percent=True, y_min=0.8))
    widened = parse(line_chart("Wide", WEEKS[:2], {"v": [5.0, 8.0]}, y_label="n", y_max=50))
    below = parse(line_chart("Below", WEEKS[:2], {"v": [-5.0, 8.0]}, y_label="n", y_min=0))

    assert texts(zoomed, "y-tick") == ["80%", "82%", "84%", "86%", "88%", "90%"]
    assert elements(zoomed, "line", "zero-line") == []
    assert texts(widened, "y-tick")[-1] == "50"
    assert texts(below, "y-tick")[0] == "-5"  # data below y_min is never cut off


def test_many_x_labels_are_thinned_but_every_point_keeps_its_tooltip() -> None:
    weeks = [f"2026-W{n:02}" for n in range(1, 53)]
    root = parse(line_chart("A year", weeks, {"sent": [float(n) for n in range(52)]}, y_label="n"))

    shown = texts(root, "x-tick")
    assert 4 <= len(shown) <= 12
    assert shown[0] == "2026-W01"
    xs = [float(t.get("x", "nan")) for t in elements(root, "text", "x-tick")]
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert max(gaps) - min(gaps) < 0.2  # evenly spaced,
    assert min(gaps) > 8 * 7.2  # at least a label's width apart
    assert len(elements(series_group(root, "sent"), "circle")) == 52
    assert "2026-W52 · sent: 51" in tooltips(root)


# Bar charts


def open_rates(**kwargs: object) -> str:
    return bar_chart(
        "Open rate by segment",
        ["consumer", "enterprise", "VIP"],
        {"email": [0.42, 0.38, None], "sms": [0.91, 0.88, 0.95]},
        y_label="open rate",
        percent=True,
        **kwargs,  # type: ignore[arg-type]
    )


def test_bar_chart_labels_every_bar_and_marks_missing_values() -> None:
    root = parse(open_rates())

    assert len(elements(root, "g", "bar")) == 5  # the missing value has no bar
    assert texts(root, "value") == ["42%", "91%", "38%", "88%", "95%"]
    assert texts(root, "na") == ["n/a"]
    assert texts(root, "x-tick") == ["consumer", "enterprise", "VIP"]
    assert {"email", "sms", "open rate"} <= set(texts(root))
    assert "enterprise · sms: 88%" in tooltips(root)


def test_bar_chart_draws_a_dashed_reference_line_with_its_label() -> None:
    plain = parse(open_rates())
    root = parse(open_rates(reference=0.5, reference_label="target"))

    assert elements(plain, "g", "reference") == []
    (reference,) = elements(root, "g", "reference")
    (line,) = elements(reference, "line")
    assert line.get("stroke-dasharray")
    assert texts(reference) == ["target: 50%"]
    y = float(line.get("y1", "nan"))
    assert zero_line_y(root) > y > min(float(r.get("y", "nan")) for r in elements(root, "rect"))


def test_bar_categories_are_never_skipped_and_long_names_are_cut() -> None:
    long_name = "reseller and distribution partners in the northern region"
    categories = [f"rule {n}" for n in range(9)] + [long_name]
    root = parse(bar_chart("Rules", categories, {"sent": list(range(10))}, y_label="n"))

    shown = texts(root, "x-tick")
    assert shown[:9] == categories[:9]
    assert shown[9].endswith("…") and long_name.startswith(shown[9][:-1].rstrip())
    assert long_name in tooltips(root)


def test_negative_bars_hang_below_the_zero_line() -> None:
    root = parse(bar_chart("Change", ["email", "sms"], {"Δ": [12.0, -8.5]}, y_label="n"))

    zero = zero_line_y(root)
    up, down = (elements(g, "rect")[0] for g in elements(root, "g", "bar"))
    assert float(up.get("y", "nan")) + float(up.get("height", "nan")) == pytest.approx(zero)
    assert float(down.get("y", "nan")) == pytest.approx(zero)
    assert float(down.get("height", "nan")) > 0
    assert texts(root, "value") == ["12", "-8.5"]


# Stacked bar charts


RULES = ["birthday", "anniversary", "win-back", "renewal", "welcome", "nps-survey"]
MANY_RULES = RULES + ["churn-risk", "upsell", "referral", "holiday-greeting", "inactive-30d"]


def test_stacked_segments_sit_on_each_other_and_show_totals() -> None:
    root = parse(
        stacked_bar_chart(
            "Messages", WEEKS[:2], {"birthday": [10, 20], "win-back": [3, 0]}, y_label="messages"
        )
    )

    first, second = elements(root, "g", "stack")
    bottom, top = elements(first, "rect")
    assert float(bottom.get("y", "nan")) + float(bottom.get("height", "nan")) == pytest.approx(
        zero_line_y(root)
    )
    assert float(top.get("y", "nan")) + float(top.get("height", "nan")) == pytest.approx(
        float(bottom.get("y", "nan"))
    )
    assert float(bottom.get("height", "nan")) == pytest.approx(
        10 / 3 * float(top.get("height", "nan"))
    )
    assert len(elements(second, "rect")) == 1  # a zero draws nothing
    assert texts(root, "total") == ["13", "20"]
    assert "2026-10-19 · win-back: 3" in tooltips(root)


def test_a_long_legend_wraps_into_rows_and_the_chart_grows() -> None:
    few = parse(stacked_bar_chart("Few", WEEKS, {r: [1] * 5 for r in RULES[:2]}, y_label="n"))
    many = parse(stacked_bar_chart("Many", WEEKS, {r: [1] * 5 for r in MANY_RULES}, y_label="n"))

    items = elements(many, "g", "legend-item")
    assert [g.get("data-series") for g in items] == MANY_RULES
    rows = {float(elements(g, "text")[0].get("y", "nan")) for g in items}
    assert len(rows) >= 2
    assert height(many) >= height(few) + 20 * (len(rows) - 1)
    assert max(rows) < height(many)
    starts = [float(elements(g, "text")[0].get("x", "nan")) for g in items]
    assert min(starts) > 0 and max(starts) < 760


def test_series_beyond_the_palette_are_hatched_not_repeated() -> None:
    root = parse(stacked_bar_chart("Many", WEEKS, {r: [1] * 5 for r in MANY_RULES}, y_label="n"))

    (pattern,) = elements(root, "pattern")
    fill = f"url(#{pattern.get('id')})"
    hatched = {
        g.get("data-series")
        for g in elements(root, "g", "legend-item")
        if any(r.get("fill") == fill for r in elements(g, "rect"))
    }
    assert hatched == set(MANY_RULES[8:])


def test_stacked_bars_refuse_negative_values() -> None:
    with pytest.raises(ValueError, match="zero or more"):
        stacked_bar_chart("Bad", WEEKS[:2], {"a": [1, -1]}, y_label="n")


def test_a_series_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="'a' has 2 values for 5 labels"):
        line_chart("Bad", WEEKS, {"a": [1, 2]}, y_label="n")


# Every chart


EMPTY: dict[str, Callable[[], str]] = {
    "no labels": lambda: line_chart("Empty", [], {"a": []}, y_label="n"),
    "all None": lambda: line_chart("Empty", WEEKS[:2], {"a": [None, None]}, y_label="n"),
    "no series": lambda: bar_chart("Empty", ["x"], {}, y_label="n"),
    "empty series": lambda: stacked_bar_chart("Empty", WEEKS, {"a": []}, y_label="n"),
}


@pytest.mark.parametrize("render", EMPTY.values(), ids=EMPTY.keys())
def test_no_data_renders_a_same_size_placeholder(render: Callable[[], str]) -> None:
    root = parse(render())

    assert root.get("viewBox") == parse(treated_chart()).get("viewBox") == "0 0 760 340"
    assert texts(root) == ["Empty", NO_DATA]
    assert elements(root, "circle") == elements(root, "g", "bar") == []


def hostile_charts() -> list[str]:
    series = {HOSTILE: [1.0, 2.0], "对照组 'b'": [2.0, None]}
    labels = [HOSTILE, "第二周"]
    return [
        line_chart(HOSTILE, labels, series, y_label=HOSTILE),
        bar_chart(HOSTILE, labels, series, y_label=HOSTILE, reference=1, reference_label=HOSTILE),
        stacked_bar_chart(HOSTILE, labels, {k: [1.0, 2.0] for k in series}, y_label=HOSTILE),
        line_chart(HOSTILE, [], {}, y_label=HOSTILE),
    ]


@pytest.mark.parametrize("svg", hostile_charts())
def test_text_is_escaped_and_the_svg_still_parses(svg: str) -> None:
    root = parse(svg)

    assert "<script" not in svg
    assert root.get("aria-label") == HOSTILE
    assert HOSTILE in texts(root)


def test_chinese_labels_survive_and_control_characters_are_dropped() -> None:
    svg = line_chart("周报\x00", ["第一周", "第二周"], {"对照组\x1b": [1, 2]}, y_label="人数")
    root = parse(svg)

    assert root.get("aria-label") == "周报"
    assert {"第一周", "第二周", "对照组", "人数"} <= set(texts(root))
    assert "第二周 · 对照组: 2" in tooltips(root)


def test_output_is_deterministic() -> None:
    assert hostile_charts() == hostile_charts()
    assert treated_chart() == treated_chart()
    assert treated_chart() != treated_chart().replace("91.2%", "91.3%")


# The page


def sample_page(chart: str) -> str:
    return render_page(
        'Relationship report <Q1> & "more"',
        "1 Jan – 31 Mar 2026",
        [
            Section(
                "Headline",
                (
                    Figures(
                        (Figure("Treated <all>", "91.2%", "up 3 pp"), Figure("Sent", "12,345"))
                    ),
                    Paragraph("Read <this> & that."),
                ),
            ),
            Section("Reach 触达", (Chart(chart, caption="Weekly <share>"),)),
            Section(
                "Segments",
                (
                    Table(
                        ("Segment", "Customers", "Open rate", "Week"),
                        (
                            ("consumer <B2C>", "1,204", "42.1%", "2026-11-02"),
                            ("VIP", "-87", "38 %", "-"),
                        ),
                        caption="At a glance",
                    ),
                ),
            ),
        ],
        footer="Made by Rapport & friends",
    )


def test_page_is_self_contained_without_scripts() -> None:
    page = sample_page(treated_chart())

    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert "<script" not in page.lower()
    assert re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I) == []
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))
    assert "<style>" in page and "@media print" in page
    assert "@import" not in page and "url(" not in page.split("<body>")[0]


def test_page_links_sections_from_its_contents() -> None:
    page = sample_page(treated_chart())

    for number in (1, 2, 3):
        assert f'<section id="section-{number}">' in page
        assert f'<a href="#section-{number}">' in page
    assert page.index('href="#section-3"') < page.index('id="section-1"')


def test_page_escapes_text_but_keeps_chart_markup() -> None:
    chart = treated_chart()
    page = sample_page(chart)

    for raw in ("<Q1>", "<all>", "<this>", "<share>", "<B2C>", "& friends"):
        assert raw not in page
    for escaped in ("&lt;Q1&gt; &amp; &quot;more&quot;", "Treated &lt;all&gt;", "&lt;this&gt;"):
        assert escaped in page
    assert chart in page
    assert "Reach 触达" in page
    assert "<figcaption>Weekly &lt;share&gt;</figcaption>" in page


def test_table_cells_that_are_numbers_are_right_aligned() -> None:
    page = sample_page(treated_chart())

    for number in ("1,204", "42.1%", "-87", "38 %"):
        assert f'<td class="num">{number}</td>' in page
    for word in ("consumer &lt;B2C&gt;", "2026-11-02", "-", "VIP"):
        assert f"<td>{word}</td>" in page
    assert "<caption>At a glance</caption>" in page


def test_table_rows_must_match_the_headers() -> None:
    with pytest.raises(ValueError, match="row 2 has 1 cells for 2"):
        Table(("a", "b"), (("1", "2"), ("3",)))
