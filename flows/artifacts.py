"""Run summaries as Prefect artifacts: small tables a person reads at a glance.

Only counts, rule ids, channels, roles and reasons appear here; reasons were masked
when they were recorded (`actions.privacy`), so no name, address or phone number
reaches the Prefect UI. Titles come translated (`_()` in the flow, which knows their
values); column labels and the names of summary lines are msgids marked `N_()` where
they are defined (they are also the flows' return keys, which stay English), translated
here into RAPPORT_STAFF_LOCALE.
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rapport.services.staff_language import _


def counts_table(key: str, title: str, label: str, counts: Mapping[str, int]) -> None:
    """A two-column table, largest count first; an empty one still says so."""
    label, number = _(label), _("count")
    rows = [
        {label: name, number: count}
        for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ] or [{label: _("(none)"), number: 0}]
    # `_sync`: the same call from the async dispatch flow, without awaiting.
    create_table_artifact(table=rows, key=key, description=title, _sync=True)  # type: ignore[call-arg]


def summary(key: str, title: str, lines: Mapping[str, object]) -> None:
    """A short markdown summary: a title and one line per figure."""
    body = "\n".join(f"- **{_(name)}**: {value}" for name, value in lines.items())
    markdown(key, title, body)


def markdown(key: str, title: str, body: str) -> None:
    """A markdown artifact under a heading."""
    create_markdown_artifact(  # type: ignore[call-arg]
        markdown=f"### {title}\n\n{body}\n", key=key, description=title, _sync=True
    )
