"""The tables `rapport demo` prints: how customers spread, and what the flows left.

Only ids, rules, channels, roles and facts appear: never a name, email or phone number.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table

from engine.facts import STAGES, TIERS
from rapport.services.staff_language import _
from storage.summary import LedgerEntry, RuleCount, StatusCount

SHOWN_FACTS = (
    "tier",
    "lifecycle_stage",
    "spend_12m",
    "days_since_last_purchase",
    "purchase_overdue_ratio",
    "logins_30d",
    "open_complaints",
    "last_survey_score",
)
LEDGER_ROWS = 15


def distribution_table(counts: Counter[tuple[str, str]]) -> Table:
    """Customers per (tier, lifecycle stage)."""
    table = Table(title=_("Customers by tier and lifecycle stage"))
    table.add_column(_("tier"))
    for stage in STAGES:
        table.add_column(stage, justify="right")
    table.add_column(_("total"), justify="right")
    for tier in TIERS:
        row = [counts[(tier, stage)] for stage in STAGES]
        table.add_row(tier, *map(str, row), str(sum(row)))
    return table


def examples_table(examples: dict[str, dict[str, Any]]) -> Table:
    """A few facts of one customer per lifecycle stage, one column each."""
    table = Table(title=_("One customer per lifecycle stage"))
    table.add_column(_("fact"))
    for facts in examples.values():
        table.add_column(str(facts["customer_id"]), justify="right")
    for name in SHOWN_FACTS:
        cells = ["—" if facts[name] is None else str(facts[name]) for facts in examples.values()]
        table.add_row(name, *cells)
    return table


def firings_table(counts: list[RuleCount]) -> Table:
    table = Table(title=_("Firings per rule"))
    table.add_column(_("rule"))
    table.add_column(_("this run"), justify="right")
    table.add_column(_("in the database"), justify="right")
    for count in counts:
        table.add_row(count.rule_id, str(count.since), str(count.total))
    return table


def status_table(
    rows: list[StatusCount], key: str, title: str, first: tuple[str, ...] = ()
) -> Table:
    """Counts per `key` (one table row each) and status (one column each, the `first`
    statuses first)."""
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        counts.setdefault(row.key or _("(not chosen yet)"), Counter())[row.status] = row.count
    found = {status for per_key in counts.values() for status in per_key}
    statuses = [*first, *sorted(found - set(first))]
    table = Table(title=title)
    table.add_column(key.replace("_", " "))
    for status in statuses:
        table.add_column(status, justify="right")
    table.add_column(_("total"), justify="right")
    for name in sorted(counts):
        per_key = counts[name]
        table.add_row(name, *(str(per_key[status]) for status in statuses), str(per_key.total()))
    return table


def ledger_table(entries: list[LedgerEntry], zone: ZoneInfo) -> Table:
    """The soonest due open ledger items, due times local to `zone`: ids and roles,
    never who."""
    title = _("Remediation ledger: {count} open items").format(count=len(entries))
    table = Table(title=title)
    for column in (_("task"), _("customer"), _("kind"), _("owner role"), _("due")):
        table.add_column(column)
    for entry in entries[:LEDGER_ROWS]:
        local = entry.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        table.add_row(str(entry.task_id), entry.customer_id, entry.kind, entry.owner_role, local)
    if len(entries) > LEDGER_ROWS:
        table.caption = _("the {count} soonest due; `rapport tasks list` shows every one").format(
            count=LEDGER_ROWS
        )
    return table
