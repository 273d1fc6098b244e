"""SVG markup written by hand: elements, escaping, numbers and text that fits its room.

The charts build their SVG as strings rather than through an XML library so the output is
short and byte-for-byte stable: attributes keep their order, coordinates have one decimal
at most, and no "-0" appears. Text is escaped here, once, so no label can break the markup.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from html import escape

FONT = 12  # the charts' body font size, and the default for a text element

# Characters XML 1.0 forbids, and lone surrogates that cannot be encoded: a label holding one
# would make the whole SVG unreadable, so they are dropped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def text_element(
    x: float,
    y: float,
    content: str,
    *,
    size: float = FONT,
    anchor: str = "middle",
    rotate: bool = False,
    fit: float | None = None,
    attrs: Mapping[str, object] | None = None,
) -> str:
    """A text element; with `fit`, cut to that width with the full text as a tooltip."""
    shown = content if fit is None else fit_text(content, fit, size)
    inner = esc(shown) if shown == content else element("title", {}, esc(content)) + esc(shown)
    turn = {"transform": f"rotate(-90 {num(x)} {num(y)})"} if rotate else {}
    base = {"x": x, "y": y, "font-size": size, "text-anchor": anchor}
    return element("text", base | turn | dict(attrs or {}), inner)


def fit_text(text: str, width: float, size: float) -> str:
    """The text, cut and ended with "…" if it would be wider than `width`."""
    if text_width(text, size) <= width:
        return text
    cut = text
    while cut and text_width(cut + "…", size) > width:
        cut = cut[:-1]
    return cut.rstrip() + "…"


def text_width(text: str, size: float) -> float:
    """Estimated rendered width. SVG text cannot be measured without a browser, so wide
    (CJK) characters count one em and all others 0.6 em: generous, to err on no overlap."""
    return size * sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.6 for c in text)


def element(tag: str, attrs: Mapping[str, object], inner: str = "") -> str:
    """An element with escaped attributes; `inner` is markup, already escaped."""
    rendered = "".join(f' {key}="{esc(_attr(value))}"' for key, value in attrs.items())
    return f"<{tag}{rendered}>{inner}</{tag}>" if inner else f"<{tag}{rendered}/>"


def _attr(value: object) -> str:
    return num(value) if isinstance(value, float) else str(value)


def esc(text: str) -> str:
    """Text made safe for XML content and attributes: escaped, invalid characters dropped."""
    return escape(_XML_INVALID.sub("", text), quote=True)


def num(value: float) -> str:
    """A coordinate to one decimal, without a trailing ".0" or a "-0": stable, short output."""
    return trim(f"{value:.1f}")


def trim(text: str) -> str:
    """A formatted number without trailing zeros after its decimal point, nor a "-0"."""
    return no_negative_zero(text.rstrip("0").rstrip(".") if "." in text else text)


def no_negative_zero(text: str) -> str:
    """A formatted number that rounded to zero loses its minus sign: "-0.0%" reads as "0.0%"."""
    return text[1:] if text.startswith("-") and not text.strip("-0.,%") else text
