"""The rule vocabulary besides customer facts: operators, event types, actions.

Declared once, with types and descriptions. The loader validates rule files against
it, `rapport rules schema` turns it into JSON Schema, and the reference section of
`rules/README.md` is generated from it, so the three can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.facts import (
    CONTACT_CHANNELS,
    FEEDBACK_LEVELS,
    Fact,
    FactType,
)

# snake_case words, as Python `re` and JSON Schema both read them: the loader matches rule
# ids and tags with these, and `rapport rules schema` gives editors the same patterns.
RULE_ID_PATTERN = r"^[a-z][a-z0-9_]{2,63}$"
TAG_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"

NUMERIC = frozenset({FactType.INTEGER, FactType.NUMBER})
ALL_TYPES = frozenset(FactType)


class Operand(StrEnum):
    """What an operator takes on its right-hand side."""

    VALUE = "value"  # one value of the fact's type, or (numbers) another fact
    LIST = "list"  # a non-empty list of values
    RANGE = "range"  # [low, high], both inclusive
    FLAG = "flag"  # true or false


@dataclass(frozen=True)
class Operator:
    name: str
    description: str
    types: frozenset[FactType]
    operand: Operand


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("eq", "equal to", ALL_TYPES - {FactType.DATE}, Operand.VALUE),
        Operator("ne", "not equal to", ALL_TYPES - {FactType.DATE}, Operand.VALUE),
        Operator("lt", "less than", NUMERIC, Operand.VALUE),
        Operator("lte", "less than or equal to", NUMERIC, Operand.VALUE),
        Operator("gt", "greater than", NUMERIC, Operand.VALUE),
        Operator("gte", "greater than or equal to", NUMERIC, Operand.VALUE),
        Operator("between", "between two values, both included", NUMERIC, Operand.RANGE),
        Operator(
            "in", "one of a list", frozenset({FactType.STRING, FactType.INTEGER}), Operand.LIST
        ),
        Operator(
            "not_in", "none of a list", frozenset({FactType.STRING, FactType.INTEGER}), Operand.LIST
        ),
        Operator("exists", "has a value (true) or has none (false)", ALL_TYPES, Operand.FLAG),
    )
}


@dataclass(frozen=True)
class EventType:
    """An event a rule can be triggered by, with the fields its conditions may test."""

    name: str
    description: str
    fields: tuple[Fact, ...]


def _field(name: str, kind: FactType, description: str, *choices: str) -> Fact:
    return Fact(name, kind, "", description, nullable=True, choices=choices)


_AMOUNT = _field("amount", FactType.NUMBER, "Amount in the configured currency.")
_PRODUCT = _field("product", FactType.STRING, "Product identifier.")
_CHANNEL = _field("channel", FactType.STRING, "Channel it came through.", *CONTACT_CHANNELS)
# What a survey answer rates: the NPS question or one of the satisfaction dimensions.
SURVEY_CATEGORIES = (
    "nps",
    "product_fit",
    "response_speed",
    "resolution_quality",
    "price",
    "brand",
)
OWNER_ROLES = (
    "customer_service",
    "account_manager",
    "technical",
    "business",
    "management",
    "operations",
)

EVENT_TYPES: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType(
            "purchase",
            "A purchase; facts already include it (a first purchase has lifetime_orders 1).",
            (_AMOUNT, _PRODUCT, _field("quantity", FactType.INTEGER, "Units bought.")),
        ),
        EventType("refund", "Money returned to the customer.", (_AMOUNT, _PRODUCT)),
        EventType("login", "The customer signed in to the app or website.", ()),
        EventType(
            "contact",
            "A contact made by staff or by Rapport.",
            (
                _CHANNEL,
                _field(
                    "ref",
                    FactType.STRING,
                    "The feedback item this contact answers (its event id), if any.",
                ),
            ),
        ),
        EventType(
            "feedback",
            "An inquiry, complaint or other feedback item.",
            (
                _field("level", FactType.STRING, "Escalation level.", *FEEDBACK_LEVELS),
                _field("category", FactType.STRING, "e.g. complaint, inquiry, product_fault."),
                _CHANNEL,
            ),
        ),
        EventType(
            "survey",
            "A survey answer on the 0-10 scale (for the NPS question 0-6 is a detractor, "
            "9-10 a promoter).",
            (
                _field("score", FactType.INTEGER, "The score given, 0 to 10."),
                # No `choices`: the JSON Schema has one `event.category` for all event types,
                # so choices here would make it refuse feedback categories such as complaint.
                _field(
                    "category",
                    FactType.STRING,
                    "For a survey, the question answered: nps (also when absent) is how likely "
                    "the customer is to recommend us; " + ", ".join(SURVEY_CATEGORIES[1:]) + " "
                    "each rate one satisfaction dimension.",
                ),
            ),
        ),
        EventType(
            "task_overdue",
            "A staff task passed its due time without being closed (raised by the SLA watch).",
            (
                _field("task_kind", FactType.STRING, "The overdue task's kind."),
                _field("owner_role", FactType.STRING, "Who owned it.", *OWNER_ROLES),
                _field(
                    "level",
                    FactType.STRING,
                    "Feedback level, for feedback tasks.",
                    *FEEDBACK_LEVELS,
                ),
                _field("hours_overdue", FactType.NUMBER, "Hours past the due time."),
            ),
        ),
        EventType(
            "step_due",
            "A step planned earlier with the `schedule` action has come due.",
            (_field("step", FactType.STRING, "The step's name as given to `schedule`."),),
        ),
    )
}


class ParamType(StrEnum):
    """Types of action parameters."""

    STRING = "string"
    TEXT = "text"
    DURATION = "duration"
    DEADLINE = "deadline"  # a duration, or a feedback target: first_response, resolution
    BOOLEAN = "boolean"
    TEMPLATE = "template"
    CHANNELS = "channels"
    CHOICE = "choice"


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    description: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionSpec:
    name: str
    description: str
    params: tuple[Param, ...]

    def param(self, name: str) -> Param | None:
        return next((param for param in self.params if param.name == name), None)


# What a message is for. The policy's frequency cap counts `frequency_cap.counts` (by
# default marketing alone); an open complaint holds everything but service.
PURPOSES: dict[str, str] = {
    "marketing": "offers, picks and win-backs: capped, held while a complaint is open",
    "care": "greetings with no sales pitch (birthday, holiday, anniversary): held while "
    "a complaint is open, capped only when the policy's frequency_cap counts them",
    "service": "replies, reminders, checks: never capped or held",
}

_ROLE = Param("owner_role", ParamType.CHOICE, "Who must do it.", required=True, choices=OWNER_ROLES)

ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            "send_message",
            "Send the customer a message from a template, on the first allowed channel.",
            (
                Param(
                    "template",
                    ParamType.TEMPLATE,
                    "Template name under templates/messages/.",
                    required=True,
                ),
                Param(
                    "channels",
                    ParamType.CHANNELS,
                    "Channels in order of preference; default: the customer's preference, "
                    "then the tier and segment defaults.",
                    default=(),
                ),
                Param(
                    "purpose",
                    ParamType.CHOICE,
                    "What the message is for: "
                    + "; ".join(f"{name}: {text}" for name, text in PURPOSES.items())
                    + ".",
                    default="marketing",
                    choices=tuple(PURPOSES),
                ),
            ),
        ),
        ActionSpec(
            "open_task",
            "Open a task for staff: a call, a visit, a remediation item.",
            (
                Param(
                    "kind",
                    ParamType.STRING,
                    "What the task is, e.g. relationship_call.",
                    required=True,
                ),
                _ROLE,
                Param("department", ParamType.STRING, "Responsible department, if any."),
                Param(
                    "due_in",
                    ParamType.DEADLINE,
                    "Time allowed from the triggering event (or the firing), on the "
                    "feedback level's clock; or `first_response` / `resolution`: the "
                    "feedback item's target (policy.yaml, feedback_sla).",
                    required=True,
                ),
                Param("acceptance_criteria", ParamType.TEXT, "What must be true to close it."),
                Param(
                    "ledger",
                    ParamType.BOOLEAN,
                    "Enter it in the remediation ledger (closing needs an acceptance note).",
                    default=False,
                ),
            ),
        ),
        ActionSpec(
            "escalate",
            "Hand the triggering item to the next owner with a new deadline.",
            (
                Param(
                    "to_role",
                    ParamType.CHOICE,
                    "The next owner.",
                    required=True,
                    choices=OWNER_ROLES,
                ),
                Param(
                    "due_in",
                    ParamType.DURATION,
                    "Time the next owner has from the missed deadline, on the feedback "
                    "level's clock.",
                    required=True,
                ),
                Param("reason", ParamType.TEXT, "Why, as shown to the next owner."),
            ),
        ),
        ActionSpec(
            "tag",
            "Attach a tag to the customer, e.g. churn_risk.",
            (Param("tag", ParamType.STRING, "The tag.", required=True),),
        ),
        ActionSpec(
            "schedule",
            "Plan a later step: a step_due event for this customer after a delay.",
            (
                Param(
                    "step",
                    ParamType.STRING,
                    "The step's name, matched by step_due rules.",
                    required=True,
                ),
                Param(
                    "after",
                    ParamType.DURATION,
                    "Delay from the firing, or from the message with `from: message`.",
                    required=True,
                ),
                Param(
                    "from",
                    ParamType.CHOICE,
                    "What the delay counts from: firing, or message — when the rule's first "
                    "send_message went out (no step if it never does, e.g. a hold suppressed it).",
                    default="firing",
                    choices=("firing", "message"),
                ),
            ),
        ),
    )
}


# The variables a message template may use; anything else fails `rapport rules check`.
TEMPLATE_VARIABLES: dict[str, str] = {
    "customer.id": "The customer's id.",
    "customer.name": "The customer's name; may be empty.",
    "customer.locale": "zh-CN or en.",
    "customer.segment": "consumer or enterprise.",
    "customer.tier": "high, mid or base.",
    "customer.stage": "The lifecycle stage.",
    "customer.account_manager": "The account manager's name; may be empty.",
    "facts.<fact>": "Any customer fact by name (nullable facts may be none).",
    "event.<field>": "The triggering event's fields, in templates of event rules only.",
    "suggestions": "Products to suggest after a purchase, from the affinity table.",
    "reply_by": "In templates of feedback rules: when the customer hears from us at the "
    "latest (the item's first-response deadline, in their timezone and language).",
    "company.name": "Company name.",
    "company.service_phone": "Customer-service phone number.",
    "company.website": "Company website.",
    "unsubscribe_url": "Link that opts the customer out of this channel (marketing).",
}
