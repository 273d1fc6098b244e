"""The HTML shell of the relationship report: one self-contained file.

Everything is inline (styles, charts as SVG), there is no script, and nothing points at
the network, so the report opens the same from a mail attachment, a share or a printout.
All text is escaped; only chart SVG from `rapport.report.charts` is trusted markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import assert_never


@dataclass(frozen=True)
class Figure:
    """A headline number, e.g. label "Customers treated", value "91.2%"."""

    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class Figures:
    """A row of headline cards."""

    items: tuple[Figure, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def __post_init__(self) -> None:
        """A row of another width would shift its cells under the wrong headers."""
        for number, row in enumerate(self.rows, start=1):
            if len(row) != len(self.headers):
                raise ValueError(f"row {number} has {len(row)} cells for {len(self.headers)}")


@dataclass(frozen=True)
class Chart:
    """An SVG from `rapport.report.charts`, inserted as is (trusted markup)."""

    svg: str
    caption: str = ""


@dataclass(frozen=True)
class Paragraph:
    text: str


Block = Figures | Table | Chart | Paragraph


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


# Numbers as the report writes them: signs, thousands separators, a currency sign, and
# units such as %, pp (percent points), × or k/M. Such cells are right-aligned so digits
# line up down a column.
_NUMERIC = re.compile(r"[+\-−]?[$€£¥]?\d[\d,.\u202f ]*(?:\s?(?:%|pp|×|x|[kKM]))?")

_CSS = """
:root { color-scheme: light; --ink: #1d1d1f; --muted: #5f6368; --line: #d9dce1;
  --card: #f6f7f9; --accent: #0072B2; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }
.page { max-width: 1040px; margin: 0 auto; padding: 32px 24px 48px; }
header h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 4px; }
.subtitle { color: var(--muted); margin: 0 0 24px; font-size: 1.05rem; }
nav.toc { border: 1px solid var(--line); border-radius: 8px; padding: 12px 20px;
  margin-bottom: 32px; background: var(--card); }
nav.toc h2 { font-size: 0.85rem; text-transform: uppercase; letter-spacing: 0.06em;
  color: var(--muted); margin: 0 0 6px; }
nav.toc ol { margin: 0; padding-left: 1.4em; columns: 2 18em; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
section { margin: 0 0 40px; scroll-margin-top: 12px; }
section > h2 { font-size: 1.4rem; border-bottom: 2px solid var(--line);
  padding-bottom: 6px; margin: 0 0 16px; }
p { max-width: 72ch; margin: 0 0 16px; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr));
  gap: 12px; margin: 0 0 20px; }
.figure { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 16px; }
.figure-label { color: var(--muted); font-size: 0.9rem; }
.figure-value { font-size: 1.8rem; font-weight: 700; line-height: 1.25;
  font-variant-numeric: tabular-nums; }
.figure-note { color: var(--muted); font-size: 0.85rem; }
figure.chart { margin: 0 0 24px; }
.chart-scroll { overflow-x: auto; }
figure.chart svg { display: block; width: 100%; min-width: 560px; height: auto; }
figcaption, caption { color: var(--muted); font-size: 0.9rem; text-align: left;
  padding: 4px 0 8px; }
.table-wrap { overflow-x: auto; margin: 0 0 24px; }
table { border-collapse: collapse; width: 100%; font-size: 0.95rem; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { border-bottom: 2px solid #b9bec6; background: var(--card); }
tbody tr:nth-child(even) { background: #fbfbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.wide { font-size: 0.8rem; }
table.wide th, table.wide td { padding: 5px 6px; }
footer { color: var(--muted); font-size: 0.85rem; border-top: 1px solid var(--line);
  padding-top: 12px; margin-top: 40px; }
@media (max-width: 600px) { .page { padding: 20px 12px; } header h1 { font-size: 1.5rem; } }
@media print {
  figure.chart svg { min-width: 0; }
  @page { margin: 15mm; }
  body { font-size: 11pt; }
  .page { max-width: none; padding: 0; }
  nav.toc { break-after: page; }
  nav.toc a { color: inherit; }
  section { break-before: auto; }
  section > h2 { break-after: avoid; }
  figure.chart, .figures, tr { break-inside: avoid; }
  thead { display: table-header-group; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def render_page(
    title: str,
    subtitle: str,
    sections: Sequence[Section],
    *,
    footer: str = "",
    lang: str = "en",
    contents: str = "Contents",
) -> str:
    """The whole report as one HTML5 document with a table of contents; deterministic.
    `lang` (BCP 47, e.g. zh-CN) tells browsers and screen readers the page's language."""
    toc = "".join(
        f'<li><a href="#{_anchor(n)}">{escape(s.title)}</a></li>'
        for n, s in enumerate(sections, start=1)
    )
    body = "\n".join(_section(n, s) for n, s in enumerate(sections, start=1))
    tail = f"<footer>{escape(footer)}</footer>\n" if footer else ""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        '<div class="page">\n'
        f'<header><h1>{escape(title)}</h1><p class="subtitle">{escape(subtitle)}</p></header>\n'
        f'<nav class="toc" aria-label="{escape(contents)}"><h2>{escape(contents)}</h2>'
        f"<ol>{toc}</ol></nav>\n"
        f"{body}\n{tail}</div>\n</body>\n</html>\n"
    )


def _anchor(number: int) -> str:
    """Section ids by position: stable, unique and plain ASCII whatever the title's script."""
    return f"section-{number}"


def _section(number: int, section: Section) -> str:
    blocks = "\n".join(_block(block) for block in section.blocks)
    heading = f"<h2>{escape(section.title)}</h2>"
    return f'<section id="{_anchor(number)}">\n{heading}\n{blocks}\n</section>'


def _block(block: Block) -> str:
    match block:
        case Figures():
            return _figures(block)
        case Table():
            return _table(block)
        case Chart():
            caption = f"<figcaption>{escape(block.caption)}</figcaption>" if block.caption else ""
            chart = f'<div class="chart-scroll">{block.svg}</div>'
            return f'<figure class="chart">{chart}{caption}</figure>'
        case Paragraph():
            return f"<p>{escape(block.text)}</p>"
        case _:
            assert_never(block)


def _figures(figures: Figures) -> str:
    cards = "".join(
        '<div class="figure">'
        f'<div class="figure-label">{escape(f.label)}</div>'
        f'<div class="figure-value">{escape(f.value)}</div>'
        + (f'<div class="figure-note">{escape(f.note)}</div>' if f.note else "")
        + "</div>"
        for f in figures.items
    )
    return f'<div class="figures">{cards}</div>'


WIDE_TABLE = 8  # columns; more are set in a smaller size


def _table(table: Table) -> str:
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in table.headers)
    rows = "".join(f"<tr>{''.join(_cell(c) for c in row)}</tr>" for row in table.rows)
    wide = ' class="wide"' if len(table.headers) > WIDE_TABLE else ""  # smaller, to fit
    return (
        f'<div class="table-wrap"><table{wide}>{caption}'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _cell(text: str) -> str:
    numeric = _NUMERIC.fullmatch(text.strip()) is not None
    return f'<td class="num">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"
