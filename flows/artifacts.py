"""Run summaries as Prefect artifacts: small tables a person reads at a glance.

Only counts, rule ids, channels, roles and reasons appear here; reasons were masked
when they were recorded (`actions.privacy`), so no name, address or phone number
reaches the Prefect UI.
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def counts_table(key: str, title: str, label: str, counts: Mapping[str, int]) -> None:
    """A two-column table, largest count first; an empty one still says so."""
    rows = [
        {label: name, "count": count}
        for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ] or [{label: "(none)", "count": 0}]
    # `_sync`: the same call from the async dispatch flow, without awaiting.
    create_table_artifact(table=rows, key=key, description=title, _sync=True)  # type: ignore[call-arg]


def summary(key: str, title: str, lines: Mapping[str, object]) -> None:
    """A short markdown summary: a title and one line per figure."""
    body = "\n".join(f"- **{name}**: {value}" for name, value in lines.items())
    markdown(key, title, body)


def markdown(key: str, title: str, body: str) -> None:
    """A markdown artifact under a heading."""
    create_markdown_artifact(  # type: ignore[call-arg]
        markdown=f"### {title}\n\n{body}\n", key=key, description=title, _sync=True
    )
