"""What every chart shares around its marks: the y scale, the plot frame, the axes, the
legend and the SVG element holding them.

All charts have one width and one plot area so that, stacked on a report page, their
axes line up; only the legend, wrapped into as many rows as it needs, makes one taller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rapport.report.svg import (
    FONT,
    element,
    esc,
    fit_text,
    no_negative_zero,
    num,
    text_element,
    text_width,
    trim,
)

WIDTH = 760
BASE_HEIGHT = 340  # with one legend row; each further row adds _LEGEND_ROW

# Okabe-Ito, ordered so the colours with most contrast on white come first; yellow last.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")

PLOT_TOP = 48
PLOT_BOTTOM = 282
RIGHT = WIDTH - 20
_TITLE_Y = 26
_X_LABEL_GAP = 20  # from the plot bottom to the x tick labels' baseline
_LEGEND_Y = PLOT_BOTTOM + 46
_LEGEND_ROW = 20
_LEGEND_TEXT_MAX = 260.0
_MAX_X_LABELS = 12
_MAX_X_LABEL_WIDTH = 140.0  # longer category names are cut (full name in a tooltip)

Kind = Literal["line", "bar"]


@dataclass(frozen=True)
class Style:
    """How one series is drawn: its colour, and for the second round of the palette a
    dash (lines) or hatch (bars) so series nine onwards do not look like one to eight."""

    colour: str
    variant: bool


@dataclass(frozen=True)
class Scale:
    """The y axis: its range, rounded out to "nice" ticks, and how to write a value."""

    lo: float
    hi: float
    ticks: tuple[float, ...]
    decimals: int  # of the tick labels, in the unit shown (percent points for percent)
    percent: bool

    def tick_label(self, value: float) -> str:
        shown = value * 100 if self.percent else value
        text = no_negative_zero(f"{shown:,.{self.decimals}f}")
        return f"{text}%" if self.percent else text

    def value_label(self, value: float) -> str:
        """A data value for tooltips and bar labels: a little more precise than the ticks."""
        if self.percent:
            return f"{trim(f'{value * 100:.{max(1, self.decimals + 1)}f}')}%"
        return trim(f"{value:,.{max(2, self.decimals + 1)}f}")


@dataclass(frozen=True)
class Frame:
    """Where the plot sits in the SVG and how data maps onto it; x is a band per label."""

    left: float
    top: float
    bottom: float
    count: int
    scale: Scale

    @property
    def slot(self) -> float:
        return (RIGHT - self.left) / self.count

    def x(self, index: int) -> float:
        return self.left + (index + 0.5) * self.slot

    def y(self, value: float) -> float:
        share = (value - self.scale.lo) / (self.scale.hi - self.scale.lo)
        return self.bottom - share * (self.bottom - self.top)


def series_style(index: int) -> Style:
    """The style of the series at `index`, the same in the marks and in the legend."""
    return Style(PALETTE[index % len(PALETTE)], (index // len(PALETTE)) % 2 == 1)


# Scale and frame


def y_scale(
    values: Sequence[float], percent: bool, y_min: float | None = None, y_max: float | None = None
) -> Scale:
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
    return Scale(ticks[0], ticks[-1], ticks, decimals, percent)


def _nice_step(rough: float) -> float:
    magnitude = 10.0 ** math.floor(math.log10(rough))
    return next(m * magnitude for m in (1, 2, 5, 10) if rough <= m * magnitude * (1 + 1e-9))


def plot_left(scale: Scale) -> float:
    """Room on the left for the rotated y label and the widest tick label."""
    widest = max(text_width(scale.tick_label(t), FONT) for t in scale.ticks)
    return max(56.0, 34 + widest + 8)


def plot_frame(scale: Scale, count: int, *, above: float = 0.0, below: float = 0.0) -> Frame:
    """The plot area, shrunk by bands kept free for labels above (or below) the bars."""
    return Frame(plot_left(scale), PLOT_TOP + above, PLOT_BOTTOM - below, count, scale)


def rects(x: float, y: float, width: float, height: float, style: Style, hatch: str) -> str:
    """A filled box, hatched over for second-round styles: a bar, or a legend swatch."""
    box = {"x": x, "y": y, "width": width, "height": height}
    solid = element("rect", box | {"fill": style.colour, "stroke": "#fff", "stroke-width": 0.5})
    return solid + (element("rect", box | {"fill": f"url(#{hatch})"}) if style.variant else "")


# Axes, legend, the SVG itself


def assemble(
    title: str,
    frame: Frame,
    y_label: str,
    names: Sequence[str],
    kind: Kind,
    hatch: str | None,
    marks: Sequence[str],
) -> str:
    """The chart around its marks: axes below them, the legend under the plot."""
    legend, rows = _legend(names, kind, hatch)
    defs = _hatch_pattern(hatch) if hatch and len(names) > len(PALETTE) else ""
    body = [defs, *_axes(frame, y_label), *marks, legend]
    return chart_svg(title, BASE_HEIGHT + (rows - 1) * _LEGEND_ROW, body)


def _axes(frame: Frame, y_label: str) -> list[str]:
    """Gridlines with tick labels (the zero line darker) and the rotated y axis label."""
    parts = []
    for tick in frame.scale.ticks:
        y = frame.y(tick)
        zero = tick == 0
        line = {"x1": frame.left, "x2": RIGHT, "y1": y, "y2": y}
        look = {"stroke": "#555", "stroke-width": 1.2} if zero else {"stroke": "#e3e3e3"}
        parts.append(element("line", line | look | {"class": "zero-line" if zero else "grid"}))
        label = frame.scale.tick_label(tick)
        parts.append(
            text_element(frame.left - 6, y + 4, label, anchor="end", attrs={"class": "y-tick"})
        )
    middle = (frame.top + frame.bottom) / 2
    parts.append(text_element(16, middle, y_label, rotate=True, attrs={"class": "y-label"}))
    return parts


def x_ticks(frame: Frame, labels: Sequence[str], *, thin: bool) -> list[str]:
    """X labels under their band. With `thin` (a time axis, where skipping is harmless)
    every n-th only when they would otherwise collide, and never more than twelve; labels
    still too long for their room are cut, in full on hover."""
    step = _label_step(frame, labels) if thin else 1
    room = max(frame.slot * step - 8, text_width("…", FONT) * 4)
    y = PLOT_BOTTOM + _X_LABEL_GAP
    return [
        text_element(frame.x(i), y, labels[i], fit=room, attrs={"class": "x-tick"})
        for i in range(0, len(labels), step)
    ]


def _label_step(frame: Frame, labels: Sequence[str]) -> int:
    widest = min(max(text_width(label, FONT) for label in labels), _MAX_X_LABEL_WIDTH)
    return max(math.ceil((widest + 10) / frame.slot), math.ceil(len(labels) / _MAX_X_LABELS))


def _legend(names: Sequence[str], kind: Kind, hatch: str | None) -> tuple[str, int]:
    """The series names under the plot, wrapped into centred rows; the markup and row count."""
    texts = [fit_text(name, _LEGEND_TEXT_MAX, FONT) for name in names]
    widths = [20 + text_width(text, FONT) + 18 for text in texts]
    rows = _wrap(widths, WIDTH - 40)
    parts = []
    for r, row in enumerate(rows):
        x = (WIDTH - sum(widths[i] for i in row) + 18) / 2
        y = _LEGEND_Y + r * _LEGEND_ROW
        for i in row:
            swatch = _swatch(kind, series_style(i), x, y, hatch or "")
            text = text_element(x + 20, y, names[i], anchor="start", fit=_LEGEND_TEXT_MAX)
            item = {"class": "legend-item", "data-series": names[i]}
            parts.append(element("g", item, swatch + text))
            x += widths[i]
    return element("g", {"class": "legend"}, "".join(parts)), len(rows)


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


def _swatch(kind: Kind, style: Style, x: float, y: float, hatch: str) -> str:
    if kind == "bar":
        return rects(x + 2, y - 10, 12, 12, style, hatch)
    dash = {"stroke-dasharray": "5 3"} if style.variant else {}
    line = {"x1": x, "x2": x + 16, "y1": y - 4, "y2": y - 4, "stroke": style.colour}
    dot = {"cx": x + 8, "cy": y - 4, "r": 3.5, "fill": style.colour}
    return element("line", line | {"stroke-width": 2.5} | dash) + element("circle", dot)


def _hatch_pattern(hatch: str) -> str:
    stripe = element("rect", {"width": 2.5, "height": 6, "fill": "#fff", "fill-opacity": 0.7})
    attrs = {"id": hatch, "patternUnits": "userSpaceOnUse", "width": 6, "height": 6}
    pattern = element("pattern", attrs | {"patternTransform": "rotate(45)"}, stripe)
    return element("defs", {}, pattern)


def chart_svg(title: str, height: float, body: Sequence[str]) -> str:
    """The root element: titled for screen readers, sized to the page's width."""
    attrs = {
        "xmlns": "http://www.w3.org/2000/svg",
        "viewBox": f"0 0 {WIDTH} {num(height)}",
        "width": "100%",
        "role": "img",
        "aria-label": title,
        "class": "rapport-chart",
        "font-family": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
        "font-size": FONT,
        "fill": "#222",
    }
    bold = {"class": "chart-title", "font-weight": 700}
    heading = text_element(20, _TITLE_Y, title, size=16, anchor="start", fit=WIDTH - 40, attrs=bold)
    caption = element("title", {}, esc(title))
    return element("svg", attrs, caption + heading + "".join(body))
