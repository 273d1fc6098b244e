"""Inline SVG charts for the self-contained HTML report.

Every chart is one SVG string: no scripts, fonts or images to fetch, so the report opens
offline. Output is deterministic (same data, same bytes) so reports can be diffed, and
series use the Okabe-Ito palette so colour-blind readers can tell them apart; past eight
series the palette repeats with dashed lines or hatched bars instead of repeating exactly.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

WIDTH = 760
BASE_HEIGHT = 340  # with one legend row; each further row adds _LEGEND_ROW
NO_DATA = "No data in this period"

# Okabe-Ito, ordered so the colours with most contrast on white come first; yellow last.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")

_FONT = 12
_SMALL = 11
_TITLE_Y = 26
_PLOT_TOP = 48
_PLOT_BOTTOM = 282
_RIGHT = WIDTH - 20
_X_LABEL_GAP = 20  # from the plot bottom to the x tick labels' baseline
_LEGEND_Y = _PLOT_BOTTOM + 46
_LEGEND_ROW = 20
_LEGEND_TEXT_MAX = 260.0
_MAX_X_LABELS = 12
_MAX_X_LABEL_WIDTH = 140.0  # longer category names are cut (full name in a tooltip)
_HALO: dict[str, object] = {
    "stroke": "#fff",
    "stroke-width": 3,
    "stroke-linejoin": "round",
    "paint-order": "stroke",
}
_TOTAL: dict[str, object] = {"class": "total", "font-weight": 600, **_HALO}
# Characters XML 1.0 forbids, and lone surrogates that cannot be encoded: a label holding one
# would make the whole SVG unreadable, so they are dropped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Kind = Literal["line", "bar"]
Values = Sequence[float | None]


@dataclass(frozen=True)
class _Style:
    """How one series is drawn: its colour, and for the second round of the palette a
    dash (lines) or hatch (bars) so series nine onwards do not look like one to eight."""

    colour: str
    variant: bool


@dataclass(frozen=True)
class _Scale:
    """The y axis: its range, rounded out to "nice" ticks, and how to write a value."""

    lo: float
    hi: float
    ticks: tuple[float, ...]
    decimals: int  # of the tick labels, in the unit shown (percent points for percent)
    percent: bool

    def tick_label(self, value: float) -> str:
        shown = value * 100 if self.percent else value
        text = _no_negative_zero(f"{shown:,.{self.decimals}f}")
        return f"{text}%" if self.percent else text

    def value_label(self, value: float) -> str:
        """A data value for tooltips and bar labels: a little more precise than the ticks."""
        if self.percent:
            return f"{_trim(f'{value * 100:.{max(1, self.decimals + 1)}f}')}%"
        return _trim(f"{value:,.{max(2, self.decimals + 1)}f}")


@dataclass(frozen=True)
class _Frame:
    """Where the plot sits in the SVG and how data maps onto it; x is a band per label."""

    left: float
    top: float
    bottom: float
    count: int
    scale: _Scale

    @property
    def slot(self) -> float:
        return (_RIGHT - self.left) / self.count

    def x(self, index: int) -> float:
        return self.left + (index + 0.5) * self.slot

    def y(self, value: float) -> float:
        share = (value - self.scale.lo) / (self.scale.hi - self.scale.lo)
        return self.bottom - share * (self.bottom - self.top)


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
    scale = _scale(_present(data), percent, y_min, y_max)
    frame = _frame(scale, len(x_labels))
    marks = [
        _line_series(frame, x_labels, name, values, _style(i))
        for i, (name, values) in enumerate(data.items())
    ]
    marks += _x_ticks(frame, x_labels, thin=True)
    return _assemble(title, frame, y_label, list(data), "line", None, marks)


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
    scale = _scale([*_present(data), *extra], percent)
    left = _plot_left(scale)
    width = _bar_width(left, len(categories), len(data))
    labels = [[_bar_label(scale, v) for v in values] for values in data.values()]
    flat = [label for row in labels for label in row]
    rotate = any(_text_width(label, _SMALL) > width for label in flat)
    band = max(_text_width(label, _SMALL) for label in flat) + 6 if rotate else 16.0
    negative = any(v is not None and v < 0 for v in _present(data))
    frame = _frame(scale, len(categories), above=band, below=band if negative else 0.0)
    hatch = _hatch_id(title, data)
    marks = [
        _bar_group(frame, categories[i], i, data, labels, width, rotate, hatch)
        for i in range(len(categories))
    ]
    if reference is not None:
        marks.append(_reference(frame, reference, reference_label))
    marks += _x_ticks(frame, categories, thin=False)
    return _assemble(title, frame, y_label, list(data), "bar", hatch, marks)


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
    scale = _scale(totals, percent=False)
    left = _plot_left(scale)
    width = _bar_width(left, len(x_labels), 1)
    texts = [scale.value_label(total) for total in totals]
    show_totals = all(_text_width(text, _SMALL) <= width + 4 for text in texts)
    frame = _frame(scale, len(x_labels), above=16.0 if show_totals else 0.0)
    hatch = _hatch_id(title, data)
    marks = [_stack(frame, x_labels[i], i, data, width, hatch) for i in range(len(x_labels))]
    if show_totals:
        marks += [
            _text(frame.x(i), frame.y(totals[i]) - 5, texts[i], size=_SMALL, attrs=_TOTAL)
            for i in range(len(x_labels))
        ]
    marks += _x_ticks(frame, x_labels, thin=True)
    return _assemble(title, frame, y_label, list(data), "bar", hatch, marks)


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


def _style(index: int) -> _Style:
    return _Style(PALETTE[index % len(PALETTE)], (index // len(PALETTE)) % 2 == 1)


def _hatch_id(title: str, data: Mapping[str, object]) -> str:
    """An id for the hatch pattern, distinct between charts (several share one HTML page,
    hence one id namespace) yet the same on every run."""
    digest = hashlib.sha1("\x1f".join([title, *data]).encode()).hexdigest()
    return f"hatch-{digest[:12]}"


# Scale and frame


def _scale(
    values: Sequence[float], percent: bool, y_min: float | None = None, y_max: float | None = None
) -> _Scale:
    """A y axis covering the values and zero (or the given bounds), rounded out to ticks
    of 1, 2 or 5 × 10^k so the labels are numbers people read at a glance."""
    lo = min([*values, 0.0 if y_min is None else y_min])
    hi = max([*values, 0.0 if y_max is None else y_max])
    if hi == lo:
        hi = lo + 1.0
    step = _nice_step((hi - lo) / 5)
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    ticks = tuple(round(k * step, 12) + 0.0 for k in range(first, last + 1))
    shown_step = step * 100 if percent else step
    decimals = max(0, -math.floor(math.log10(shown_step) + 1e-9))
    return _Scale(ticks[0], ticks[-1], ticks, decimals, percent)


def _nice_step(rough: float) -> float:
    magnitude = 10.0 ** math.floor(math.log10(rough))
    return next(m * magnitude for m in (1, 2, 5, 10) if rough <= m * magnitude * (1 + 1e-9))


def _plot_left(scale: _Scale) -> float:
    """Room on the left for the rotated y label and the widest tick label."""
    widest = max(_text_width(scale.tick_label(t), _FONT) for t in scale.ticks)
    return max(56.0, 34 + widest + 8)


def _frame(scale: _Scale, count: int, *, above: float = 0.0, below: float = 0.0) -> _Frame:
    """The plot area, shrunk by bands kept free for labels above (or below) the bars."""
    return _Frame(_plot_left(scale), _PLOT_TOP + above, _PLOT_BOTTOM - below, count, scale)


def _bar_width(left: float, count: int, per_group: int) -> float:
    group = min((_RIGHT - left) / count * 0.8, per_group * 64)
    return group / per_group


# Marks


def _line_series(
    frame: _Frame, x_labels: Sequence[str], name: str, values: Values, style: _Style
) -> str:
    """A series as one path per unbroken run of values, plus a marker with tooltip each."""
    dash = {"stroke-dasharray": "7 4"} if style.variant else {}
    paths = [
        _el(
            "path",
            {"d": _path_data(frame, run), "fill": "none", "stroke": style.colour}
            | {"stroke-width": 2.5, "stroke-linejoin": "round"}
            | dash,
        )
        for run in _runs(values)
        if len(run) > 1
    ]
    points = [
        _el(
            "circle",
            {"cx": frame.x(i), "cy": frame.y(v), "r": 4, "fill": style.colour}
            | {"stroke": "#fff", "stroke-width": 1.5},
            _tooltip(x_labels[i], name, frame.scale.value_label(v)),
        )
        for i, v in enumerate(values)
        if v is not None
    ]
    return _el("g", {"class": "series", "data-series": name}, "".join(paths + points))


def _runs(values: Values) -> list[list[tuple[int, float]]]:
    """The values split at every None, each run as (index, value) pairs."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append((i, v))
    return [run for run in runs if run]


def _path_data(frame: _Frame, run: Sequence[tuple[int, float]]) -> str:
    return "M" + " L".join(f"{_num(frame.x(i))} {_num(frame.y(v))}" for i, v in run)


def _bar_label(scale: _Scale, value: float | None) -> str:
    return "n/a" if value is None else scale.value_label(value)


def _bar_group(
    frame: _Frame,
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
            bar = _bar(x + 1, frame.y(value), width - 2, frame.y(0), _style(j), hatch, tooltip)
            parts.append(bar)
        parts.append(_value_label(frame, x + width / 2, value, labels[j][index], rotate))
    return _el("g", {"class": "group"}, "".join(parts))


def _value_label(frame: _Frame, x: float, value: float | None, text: str, rotate: bool) -> str:
    """The label beyond a bar's end (above, or below for a negative bar), turned upright
    when the bars are too narrow to hold it level; "n/a" sits on the zero line."""
    down = value is not None and value < 0
    y = frame.y(value or 0.0) + (4 if down else -4)
    missing = value is None
    attrs = {"class": "na" if missing else "value", "fill": "#666" if missing else "#222"} | _HALO
    if rotate:
        anchor = "end" if down else "start"
        return _text(x + 4, y, text, size=_SMALL, anchor=anchor, rotate=True, attrs=attrs)
    return _text(x, y + (11 if down else 0), text, size=_SMALL, attrs=attrs)


def _stack(
    frame: _Frame,
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
            parts.append(_bar(x, top, width, frame.y(base), _style(j), hatch, tooltip))
        base += value
    return _el("g", {"class": "stack"}, "".join(parts))


def _bar(
    x: float, y_a: float, width: float, y_b: float, style: _Style, hatch: str, tooltip: str
) -> str:
    """A bar between two y positions (either order), hatched for second-round styles."""
    top, height = min(y_a, y_b), abs(y_b - y_a)
    return _el("g", {"class": "bar"}, tooltip + _rects(x, top, width, height, style, hatch))


def _rects(x: float, y: float, width: float, height: float, style: _Style, hatch: str) -> str:
    box = {"x": x, "y": y, "width": width, "height": height}
    solid = _el("rect", box | {"fill": style.colour, "stroke": "#fff", "stroke-width": 0.5})
    return solid + (_el("rect", box | {"fill": f"url(#{hatch})"}) if style.variant else "")


def _reference(frame: _Frame, value: float, label: str) -> str:
    """A dashed line at `value` (e.g. a target), labelled at its right end."""
    y = frame.y(value)
    shown = frame.scale.value_label(value)
    text = f"{label}: {shown}" if label else shown
    line = _el(
        "line",
        {"x1": frame.left, "x2": _RIGHT, "y1": y, "y2": y, "stroke": "#333"}
        | {"stroke-width": 1.5, "stroke-dasharray": "6 4"},
    )
    caption = _text(_RIGHT - 2, y - 5, text, size=_SMALL, anchor="end", attrs=_HALO)
    return _el("g", {"class": "reference"}, line + caption)


def _tooltip(x_label: str, name: str, value: str) -> str:
    return _el("title", {}, _esc(f"{x_label} · {name}: {value}"))


# Axes, legend, the SVG itself


def _assemble(
    title: str,
    frame: _Frame,
    y_label: str,
    names: Sequence[str],
    kind: Kind,
    hatch: str | None,
    marks: Sequence[str],
) -> str:
    legend, rows = _legend(names, kind, hatch)
    defs = _hatch_pattern(hatch) if hatch and len(names) > len(PALETTE) else ""
    body = [defs, *_axes(frame, y_label), *marks, legend]
    return _svg(title, BASE_HEIGHT + (rows - 1) * _LEGEND_ROW, body)


def _axes(frame: _Frame, y_label: str) -> list[str]:
    """Gridlines with tick labels (the zero line darker) and the rotated y axis label."""
    parts = []
    for tick in frame.scale.ticks:
        y = frame.y(tick)
        zero = tick == 0
        line = {"x1": frame.left, "x2": _RIGHT, "y1": y, "y2": y}
        look = {"stroke": "#555", "stroke-width": 1.2} if zero else {"stroke": "#e3e3e3"}
        parts.append(_el("line", line | look | {"class": "zero-line" if zero else "grid"}))
        label = frame.scale.tick_label(tick)
        parts.append(_text(frame.left - 6, y + 4, label, anchor="end", attrs={"class": "y-tick"}))
    middle = (frame.top + frame.bottom) / 2
    parts.append(_text(16, middle, y_label, rotate=True, attrs={"class": "y-label"}))
    return parts


def _x_ticks(frame: _Frame, labels: Sequence[str], *, thin: bool) -> list[str]:
    """X labels under their band. With `thin` (a time axis, where skipping is harmless)
    every n-th only when they would otherwise collide, and never more than twelve; labels
    still too long for their room are cut, in full on hover."""
    step = _label_step(frame, labels) if thin else 1
    room = max(frame.slot * step - 8, _text_width("…", _FONT) * 4)
    y = _PLOT_BOTTOM + _X_LABEL_GAP
    return [
        _text(frame.x(i), y, labels[i], fit=room, attrs={"class": "x-tick"})
        for i in range(0, len(labels), step)
    ]


def _label_step(frame: _Frame, labels: Sequence[str]) -> int:
    widest = min(max(_text_width(label, _FONT) for label in labels), _MAX_X_LABEL_WIDTH)
    return max(math.ceil((widest + 10) / frame.slot), math.ceil(len(labels) / _MAX_X_LABELS))


def _legend(names: Sequence[str], kind: Kind, hatch: str | None) -> tuple[str, int]:
    """The series names under the plot, wrapped into centred rows; the markup and row count."""
    texts = [_fit(name, _LEGEND_TEXT_MAX, _FONT) for name in names]
    widths = [20 + _text_width(text, _FONT) + 18 for text in texts]
    rows = _wrap(widths, WIDTH - 40)
    parts = []
    for r, row in enumerate(rows):
        x = (WIDTH - sum(widths[i] for i in row) + 18) / 2
        y = _LEGEND_Y + r * _LEGEND_ROW
        for i in row:
            swatch = _swatch(kind, _style(i), x, y, hatch or "")
            text = _text(x + 20, y, names[i], anchor="start", fit=_LEGEND_TEXT_MAX)
            parts.append(_el("g", {"class": "legend-item", "data-series": names[i]}, swatch + text))
            x += widths[i]
    return _el("g", {"class": "legend"}, "".join(parts)), len(rows)


def _wrap(widths: Sequence[float], room: float) -> list[list[int]]:
    """Indices of items filled greedily into rows no wider than `room`."""
    rows: list[list[int]] = [[]]
    used = 0.0
    for i, width in enumerate(widths):
        if rows[-1] and used + width > room:
            rows.append([])
            used = 0.0
        rows[-1].append(i)
        used += width
    return rows


def _swatch(kind: Kind, style: _Style, x: float, y: float, hatch: str) -> str:
    if kind == "bar":
        return _rects(x + 2, y - 10, 12, 12, style, hatch)
    dash = {"stroke-dasharray": "5 3"} if style.variant else {}
    line = {"x1": x, "x2": x + 16, "y1": y - 4, "y2": y - 4, "stroke": style.colour}
    dot = {"cx": x + 8, "cy": y - 4, "r": 3.5, "fill": style.colour}
    return _el("line", line | {"stroke-width": 2.5} | dash) + _el("circle", dot)


def _hatch_pattern(hatch: str) -> str:
    stripe = _el("rect", {"width": 2.5, "height": 6, "fill": "#fff", "fill-opacity": 0.7})
    attrs = {"id": hatch, "patternUnits": "userSpaceOnUse", "width": 6, "height": 6}
    pattern = _el("pattern", attrs | {"patternTransform": "rotate(45)"}, stripe)
    return _el("defs", {}, pattern)


def _no_data(title: str) -> str:
    """The placeholder a chart becomes without data: same size, so layouts do not jump."""
    box = {"x": 20, "y": _PLOT_TOP, "width": WIDTH - 40, "height": _PLOT_BOTTOM - _PLOT_TOP}
    frame = _el("rect", box | {"fill": "#fafafa", "stroke": "#ccc", "stroke-dasharray": "4 4"})
    middle = (_PLOT_TOP + _PLOT_BOTTOM) / 2 + 5
    message = _text(WIDTH / 2, middle, NO_DATA, size=15, attrs={"class": "no-data", "fill": "#555"})
    return _svg(title, BASE_HEIGHT, [frame, message])


def _svg(title: str, height: float, body: Sequence[str]) -> str:
    attrs = {
        "xmlns": "http://www.w3.org/2000/svg",
        "viewBox": f"0 0 {WIDTH} {_num(height)}",
        "width": "100%",
        "role": "img",
        "aria-label": title,
        "class": "rapport-chart",
        "font-family": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
        "font-size": _FONT,
        "fill": "#222",
    }
    bold = {"class": "chart-title", "font-weight": 700}
    heading = _text(20, _TITLE_Y, title, size=16, anchor="start", fit=WIDTH - 40, attrs=bold)
    caption = _el("title", {}, _esc(title))
    return _el("svg", attrs, caption + heading + "".join(body))


# Text and elements


def _text(
    x: float,
    y: float,
    content: str,
    *,
    size: float = _FONT,
    anchor: str = "middle",
    rotate: bool = False,
    fit: float | None = None,
    attrs: Mapping[str, object] | None = None,
) -> str:
    """A text element; with `fit`, cut to that width with the full text as a tooltip."""
    shown = content if fit is None else _fit(content, fit, size)
    inner = _esc(shown) if shown == content else _el("title", {}, _esc(content)) + _esc(shown)
    turn = {"transform": f"rotate(-90 {_num(x)} {_num(y)})"} if rotate else {}
    base = {"x": x, "y": y, "font-size": size, "text-anchor": anchor}
    return _el("text", base | turn | dict(attrs or {}), inner)


def _fit(text: str, width: float, size: float) -> str:
    if _text_width(text, size) <= width:
        return text
    cut = text
    while cut and _text_width(cut + "…", size) > width:
        cut = cut[:-1]
    return cut.rstrip() + "…"


def _text_width(text: str, size: float) -> float:
    """Estimated rendered width. SVG text cannot be measured without a browser, so wide
    (CJK) characters count one em and all others 0.6 em: generous, to err on no overlap."""
    return size * sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.6 for c in text)


def _el(tag: str, attrs: Mapping[str, object], inner: str = "") -> str:
    """An element with escaped attributes; `inner` is markup, already escaped."""
    rendered = "".join(f' {key}="{_esc(_attr(value))}"' for key, value in attrs.items())
    return f"<{tag}{rendered}>{inner}</{tag}>" if inner else f"<{tag}{rendered}/>"


def _attr(value: object) -> str:
    return _num(value) if isinstance(value, float) else str(value)


def _esc(text: str) -> str:
    return escape(_XML_INVALID.sub("", text), quote=True)


def _num(value: float) -> str:
    """A coordinate to one decimal, without a trailing ".0" or a "-0": stable, short output."""
    return _trim(f"{value:.1f}")


def _trim(text: str) -> str:
    return _no_negative_zero(text.rstrip("0").rstrip(".") if "." in text else text)


def _no_negative_zero(text: str) -> str:
    return text[1:] if text.startswith("-") and not text.strip("-0.,%") else text
