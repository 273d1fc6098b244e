"""The ranking view in the terminal: rich tables built from `ranking.rank_day`'s document,
so what the terminal shows and what `--json` holds cannot disagree."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from rapport.services.staff_language import _, format_number, format_share, ngettext


def _share(value: float | None) -> str:
    return "–" if value is None else format_share(value)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    return table


def ranking_headline(document: dict[str, Any]) -> str:
    ranked = document["ranked"]
    return _(
        "Repeat buyers most overdue at {at} ({timezone}), rules revision {revision}: "
        "overdue = days since the last purchase ÷ the usual gap between purchases. "
        "{ranked} repeat buyers ranked; one-time buyers and {dormant} dormant customers "
        "are not. Nothing was sent or written."
    ).format(
        at=document["at"],
        timezone=document["timezone"],
        revision=document["rules"]["revision"][:12],
        ranked=format_number(ranked["customers"]),
        dormant=format_number(ranked["dormant_left_out"]),
    )


def _afterwards(customer: dict[str, Any]) -> str:
    if customer["outcome"] == "bought_again":
        days = customer["days_after"]
        return ngettext(
            "bought again {day}, {count} day later",
            "bought again {day}, {count} days later",
            days,
        ).format(day=customer["bought_again_on"], count=days)
    return _("left") if customer["outcome"] == "left" else _("pending")


def overdue_table(document: dict[str, Any]) -> Table:
    table = _table(
        _("The {count} most overdue, and what they did in the {horizon} after").format(
            count=len(document["customers"]), horizon=document["horizon"]
        ),
        _("customer"),
        _("tier"),
        _("last purchase"),
        _("usual gap (days)"),
        _("days since"),
        _("overdue ratio"),
        _("afterwards"),
    )
    for customer in document["customers"]:
        table.add_row(
            customer["customer_id"],
            customer["tier"],
            customer["last_purchase_on"],
            format_number(customer["usual_gap_days"], 1),
            format_number(customer["days_since_last_purchase"]),
            format_number(customer["overdue_ratio"], 2),
            _afterwards(customer),
        )
    return table


def precision_table(document: dict[str, Any]) -> Table:
    """The top K beside each churn signal on the same day and the leaver share of the
    populations: who left among those the day can judge."""
    table = _table(
        _(
            "Who left (no purchase in the {horizon} after {at}): the most overdue, each "
            "churn signal's flags at that step, and everyone they were picked from"
        ).format(horizon=document["horizon"], at=document["at"]),
        _("who"),
        _("customers"),
        _("left"),
        _("bought again"),
        _("too recent"),
        _("leaver share"),
    )

    def add(label: str, figures: dict[str, Any]) -> None:
        table.add_row(
            label,
            format_number(figures["customers"]),
            format_number(figures["left"]),
            format_number(figures["bought_again"]),
            format_number(figures["pending"]),
            _share(figures["share"]),
        )

    add(_("top {count} most overdue").format(count=document["top"]), document["precision_at_k"])
    for rule_id, rule in document["churn"].items():
        add(
            rule_id,
            {
                "customers": rule["flagged"] + rule["pending"],
                "left": rule["flagged_left"],
                "bought_again": rule["flagged"] - rule["flagged_left"],
                "pending": rule["pending"],
                "share": rule["precision"],
            },
        )
    add(_("all ranked repeat buyers (not dormant)"), document["ranked"])
    add(_("all current repeat buyers (base rate)"), document["base_rate"])
    return table


def ranking_note(document: dict[str, Any]) -> str | None:
    """Why the shares are missing, when the history does not reach the day + horizon."""
    if document["outcomes_known"]:
        return None
    if document["outcomes_known_until"] is None:
        return _("No events are stored: nothing can be judged.")
    return _(
        "The history ends at {end}: who left within {horizon} is known for days up to "
        "{day}. Choose --at on or before it for the shares."
    ).format(
        end=document["history_end"],
        horizon=document["horizon"],
        day=document["outcomes_known_until"],
    )
