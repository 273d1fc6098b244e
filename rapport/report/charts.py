"""Inline SVG charts for the self-contained HTML report.

Every chart is one SVG string: no scripts, fonts or images to fetch, so the report opens
offline. Output is deterministic (same data, same bytes) so reports can be diffed, and
series use the Okabe-Ito palette so colour-blind readers can tell them apart; past eight
series the palette repeats with dashed lines or hatched bars instead of repeating exactly.

This module holds the charts and their marks (lines, bars, labels); what every chart
shares around its marks is in `chart_layout`, and the SVG markup itself in `svg`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

from rapport.report.chart_layout import (
    BASE_HEIGHT,
    PLOT_BOTTOM,
    PLOT_TOP,
    RIGHT,
    WIDTH,
    Frame,
    Scale,
    Style,
    assemble,
    chart_svg,
    plot_frame,
    plot_left,
    rects,
    series_style,
    x_ticks,
    y_scale,
)
from rapport.report.svg import element, esc, num, text_element, text_width

NO_DATA = "No data in this period"

_SMALL = 11
_HALO: dict[str, object] = {
    "stroke": "#fff",
    "stroke-width": 3,
    "stroke-linejoin": "round",
    "paint-order": "stroke",
}
_TOTAL: dict[str, object] = {"class": "total", "font-weight": 600, **_HALO}

Values = Sequence[float | None]


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Mapping[str, Values],
    *,
    y_label: str,
    percent: bool = False,
    y_min: float | None = None,
    y_max: float | None = None,
) -> str:
    """One line per series with a marker per value; None leaves a gap in the line.

    The y axis includes zero unless `y_min`/`y_max` say otherwise; they widen the axis,
    never hide data outside it. `percent`: values are fractions shown as "45%".
    """
    data = _clean(x_labels, series)
    if not _present(data):
        return _no_data(title)
    scale = y_scale(_present(data), percent, y_min, y_max)
    frame = plot_frame(scale, len(x_labels))
    marks = [
        _line_series(frame, x_labels, name, values, series_style(i))
        for i, (name, values) in enumerate(data.items())
    ]
    marks += x_ticks(frame, x_labels, thin=True)
    return assemble(title, frame, y_label, list(data), "line", None, marks)


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Values],
    *,
    y_label: str,
    percent: bool = False,
    reference: float | None = None,
    reference_label: str = "",
) -> str:
    """Grouped bars, one group per category, each bar labelled with its value; a missing
    value shows "n/a" instead of a bar. `reference` draws a dashed line, e.g. a target."""
    data = _clean(categories, series)
    if not _present(data):
        return _no_data(title)
    extra = [] if reference is None else [reference]
    scale = y_scale([*_present(data), *extra], percent)
    left = plot_left(scale)
    width = _bar_width(left, len(categories), len(data))
    labels = [[_bar_label(scale, v) for v in values] for values in data.values()]
    flat = [label for row in labels for label in row]
    rotate = any(text_width(label, _SMALL) > width for label in flat)
    band = max(text_width(label, _SMALL) for label in flat) + 6 if rotate else 16.0
    negative = any(v is not None and v < 0 for v in _present(data))
    frame = plot_frame(scale, len(categories), above=band, below=band if negative else 0.0)
    hatch = _hatch_id(title, data)
    marks = [
        _bar_group(frame, categories[i], i, data, labels, width, rotate, hatch)
        for i in range(len(categories))
    ]
    if reference is not None:
        marks.append(_reference(frame, reference, reference_label))
    marks += x_ticks(frame, categories, thin=False)
    return assemble(title, frame, y_label, list(data), "bar", hatch, marks)


def stacked_bar_chart(
    title: str,
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    y_label: str,
) -> str:
    """Bars stacked by series (first series at the bottom), e.g. messages per week by rule,
    with each bar's total above it when the bars are wide enough to hold it."""
    data = _clean(x_labels, series)
    if not _present(data):
        return _no_data(title)
    if any(v < 0 for v in _present(data)):
        raise ValueError("stacked bars need values of zero or more")
    totals = [sum(values[i] or 0.0 for values in data.values()) for i in range(len(x_labels))]
    scale = y_scale(totals, percent=False)
    left = plot_left(scale)
    width = _bar_width(left, len(x_labels), 1)
    texts = [scale.value_label(total) for total in totals]
    show_totals = all(text_width(text, _SMALL) <= width + 4 for text in texts)
    frame = plot_frame(scale, len(x_labels), above=16.0 if show_totals else 0.0)
    hatch = _hatch_id(title, data)
    marks = [_stack(frame, x_labels[i], i, data, width, hatch) for i in range(len(x_labels))]
    if show_totals:
        marks += [
            text_element(frame.x(i), frame.y(totals[i]) - 5, texts[i], size=_SMALL, attrs=_TOTAL)
            for i in range(len(x_labels))
        ]
    marks += x_ticks(frame, x_labels, thin=True)
    return assemble(title, frame, y_label, list(data), "bar", hatch, marks)


# Data


def _clean(labels: Sequence[str], series: Mapping[str, Values]) -> dict[str, list[float | None]]:
    """Each series as one value per label; non-finite values count as missing, and so does
    an empty series (a query that found nothing). Any other length is a caller's bug."""
    cleaned: dict[str, list[float | None]] = {}
    for name, values in series.items():
        if values and len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
        present = list(values) or [None] * len(labels)
        cleaned[name] = [v if v is not None and math.isfinite(v) else None for v in present]
    return cleaned


def _present(data: Mapping[str, Sequence[float | None]]) -> list[float]:
    return [v for values in data.values() for v in values if v is not None]


def _hatch_id(title: str, data: Mapping[str, object]) -> str:
    """An id for the hatch pattern, distinct between charts (several share one HTML page,
    hence one id namespace) yet the same on every run."""
    digest = hashlib.sha1("\x1f".join([title, *data]).encode()).hexdigest()
    return f"hatch-{digest[:12]}"


# Marks


def _bar_width(left: float, count: int, per_group: int) -> float:
    """Each bar's width: a group fills 80% of its slot, leaving a gap between groups, but
    no bar is wider than 64 so a chart of few bars does not draw slabs."""
    group = min((RIGHT - left) / count * 0.8, per_group * 64)
    return group / per_group


def _line_series(
    frame: Frame, x_labels: Sequence[str], name: str, values: Values, style: Style
) -> str:
    """A series as one path per unbroken run of values, plus a marker with tooltip each."""
    dash = {"stroke-dasharray": "7 4"} if style.variant else {}
    paths = [
        element(
            "path",
            {"d": _path_data(frame, run), "fill": "none", "stroke": style.colour}
            | {"stroke-width": 2.5, "stroke-linejoin": "round"}
            | dash,
        )
        for run in _runs(values)
        if len(run) > 1
    ]
    points = [
        element(
            "circle",
            {"cx": frame.x(i), "cy": frame.y(v), "r": 4, "fill": style.colour}
            | {"stroke": "#fff", "stroke-width": 1.5},
            _tooltip(x_labels[i], name, frame.scale.value_label(v)),
        )
        for i, v in enumerate(values)
        if v is not None
    ]
    return element("g", {"class": "series", "data-series": name}, "".join(paths + points))


def _runs(values: Values) -> list[list[tuple[int, float]]]:
    """The values split at every None, each run as (index, value) pairs."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append((i, v))
    return [run for run in runs if run]


def _path_data(frame: Frame, run: Sequence[tuple[int, float]]) -> str:
    return "M" + " L".join(f"{num(frame.x(i))} {num(frame.y(v))}" for i, v in run)


def _bar_label(scale: Scale, value: float | None) -> str:
    return "n/a" if value is None else scale.value_label(value)


def _bar_group(
    frame: Frame,
    category: str,
    index: int,
    data: Mapping[str, Sequence[float | None]],
    labels: Sequence[Sequence[str]],
    width: float,
    rotate: bool,
    hatch: str,
) -> str:
    """One category: a bar per series side by side, each with its value written on top."""
    start = frame.x(index) - width * len(data) / 2
    parts = []
    for j, (name, values) in enumerate(data.items()):
        value = values[index]
        x = start + j * width
        if value is not None:
            tooltip = _tooltip(category, name, frame.scale.value_label(value))
            style = series_style(j)
            parts.append(_bar(x + 1, frame.y(value), width - 2, frame.y(0), style, hatch, tooltip))
        parts.append(_value_label(frame, x + width / 2, value, labels[j][index], rotate))
    return element("g", {"class": "group"}, "".join(parts))


def _value_label(frame: Frame, x: float, value: float | None, text: str, rotate: bool) -> str:
    """The label beyond a bar's end (above, or below for a negative bar), turned upright
    when the bars are too narrow to hold it level; "n/a" sits on the zero line."""
    down = value is not None and value < 0
    y = frame.y(value or 0.0) + (4 if down else -4)
    missing = value is None
    attrs = {"class": "na" if missing else "value", "fill": "#666" if missing else "#222"} | _HALO
    if rotate:
        anchor = "end" if down else "start"
        return text_element(x + 4, y, text, size=_SMALL, anchor=anchor, rotate=True, attrs=attrs)
    return text_element(x, y + (11 if down else 0), text, size=_SMALL, attrs=attrs)


def _stack(
    frame: Frame,
    x_label: str,
    index: int,
    data: Mapping[str, Sequence[float | None]],
    width: float,
    hatch: str,
) -> str:
    """One x label's bar: a segment per series with a value, stacked in series order."""
    x = frame.x(index) - width / 2
    base = 0.0
    parts = []
    for j, (name, values) in enumerate(data.items()):
        value = values[index] or 0.0
        if value:
            tooltip = _tooltip(x_label, name, frame.scale.value_label(value))
            top = frame.y(base + value)
            parts.append(_bar(x, top, width, frame.y(base), series_style(j), hatch, tooltip))
        base += value
    return element("g", {"class": "stack"}, "".join(parts))


def _bar(
    x: float, y_a: float, width: float, y_b: float, style: Style, hatch: str, tooltip: str
) -> str:
    """A bar between two y positions (either order), hatched for second-round styles."""
    top, height = min(y_a, y_b), abs(y_b - y_a)
    return element("g", {"class": "bar"}, tooltip + rects(x, top, width, height, style, hatch))


def _reference(frame: Frame, value: float, label: str) -> str:
    """A dashed line at `value` (e.g. a target), labelled at its right end."""
    y = frame.y(value)
    shown = frame.scale.value_label(value)
    text = f"{label}: {shown}" if label else shown
    line = element(
        "line",
        {"x1": frame.left, "x2": RIGHT, "y1": y, "y2": y, "stroke": "#333"}
        | {"stroke-width": 1.5, "stroke-dasharray": "6 4"},
    )
    caption = text_element(RIGHT - 2, y - 5, text, size=_SMALL, anchor="end", attrs=_HALO)
    return element("g", {"class": "reference"}, line + caption)


def _tooltip(x_label: str, name: str, value: str) -> str:
    return element("title", {}, esc(f"{x_label} · {name}: {value}"))


# No data


def _no_data(title: str) -> str:
    """The placeholder a chart becomes without data: same size, so layouts do not jump."""
    box = {"x": 20, "y": PLOT_TOP, "width": WIDTH - 40, "height": PLOT_BOTTOM - PLOT_TOP}
    frame = element("rect", box | {"fill": "#fafafa", "stroke": "#ccc", "stroke-dasharray": "4 4"})
    middle = (PLOT_TOP + PLOT_BOTTOM) / 2 + 5
    message = text_element(
        WIDTH / 2, middle, NO_DATA, size=15, attrs={"class": "no-data", "fill": "#555"}
    )
    return chart_svg(title, BASE_HEIGHT, [frame, message])
