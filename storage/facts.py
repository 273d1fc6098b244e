"""Customer snapshots as of any time, aggregated set-wise in SQL.

One statement joins customers to two grouped subqueries over events visible at
`as_of` (events after it do not exist for the query); Python then derives each
customer's facts from its single aggregate row, streaming, so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Subquery, and_, case, func, or_, select

from engine.facts import (
    CONTACT_CHANNELS,
    FEEDBACK_LEVELS,
    MESSAGE_CHANNELS,
    CustomerAggregates,
    FactParameters,
    derive_facts,
)
from storage.tables import CUSTOMERS, EVENTS

PROFILE_COLUMNS = (  # what facts read of a customer's profile: no personal data
    CUSTOMERS.c.id,
    CUSTOMERS.c.segment,
    CUSTOMERS.c.locale,
    CUSTOMERS.c.timezone,
    CUSTOMERS.c.birthday,
    CUSTOMERS.c.account_manager,
    *(CUSTOMERS.c[f"consent_{ch}"] for ch in MESSAGE_CHANNELS),
)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _total(condition: ColumnElement[bool]) -> ColumnElement[float]:
    return func.coalesce(func.sum(case((condition, EVENTS.c.amount), else_=0.0)), 0.0)


def _latest(condition: ColumnElement[bool]) -> ColumnElement[datetime]:
    return func.max(case((condition, EVENTS.c.occurred_at)))


def _event_aggregates(
    as_of: datetime, params: FactParameters, ids: Sequence[str] | None
) -> Subquery:
    year_ago = as_of - timedelta(days=365)
    recent = as_of - timedelta(days=params.recent_window_days)
    previous = recent - timedelta(days=params.recent_window_days)
    month_ago, two_months_ago = as_of - timedelta(days=30), as_of - timedelta(days=60)
    purchase, refund = EVENTS.c.type == "purchase", EVENTS.c.type == "refund"
    complaint = and_(EVENTS.c.type == "feedback", EVENTS.c.category == "complaint")
    in_recent = EVENTS.c.occurred_at > recent
    in_previous = and_(EVENTS.c.occurred_at > previous, EVENTS.c.occurred_at <= recent)
    query = (
        select(
            EVENTS.c.customer_id,
            (
                _total(and_(purchase, EVENTS.c.occurred_at > year_ago))
                - _total(and_(refund, EVENTS.c.occurred_at > year_ago))
            ).label("spend_12m"),
            _count(and_(purchase, EVENTS.c.occurred_at > year_ago)).label("orders_12m"),
            (_total(purchase) - _total(refund)).label("lifetime_spend"),
            _count(purchase).label("lifetime_orders"),
            func.min(case((purchase, EVENTS.c.occurred_at))).label("first_purchase_at"),
            _latest(purchase).label("last_purchase_at"),
            _count(and_(purchase, in_recent)).label("purchases_recent"),
            _total(and_(purchase, in_recent)).label("spend_recent"),
            _count(and_(purchase, in_previous)).label("purchases_previous"),
            _total(and_(purchase, in_previous)).label("spend_previous"),
            _count(and_(EVENTS.c.type == "login", EVENTS.c.occurred_at > month_ago)).label(
                "logins_30d"
            ),
            _count(
                and_(
                    EVENTS.c.type == "login",
                    EVENTS.c.occurred_at > two_months_ago,
                    EVENTS.c.occurred_at <= month_ago,
                )
            ).label("logins_prev_30d"),
            *(
                _latest(and_(EVENTS.c.type == "contact", EVENTS.c.channel == channel)).label(
                    f"contact_{channel}"
                )
                for channel in CONTACT_CHANNELS
            ),
            _count(and_(complaint, in_recent)).label("complaints_recent"),
            _latest(complaint).label("last_complaint_at"),
            _latest(_nps_answer(EVENTS.c)).label("survey_at"),
            *(
                _count(
                    and_(
                        purchase,
                        EVENTS.c.product == window.product,
                        EVENTS.c.occurred_at > as_of - timedelta(days=window.days),
                    )
                ).label(f"product_{index}")
                for index, window in enumerate(params.product_windows)
            ),
        )
        .where(EVENTS.c.occurred_at <= as_of)
        .group_by(EVENTS.c.customer_id)
    )
    if ids is not None:
        query = query.where(EVENTS.c.customer_id.in_(ids))
    return query.subquery("agg")


def _nps_answer(events: Any) -> ColumnElement[bool]:
    """A survey answer to the NPS question (no category, or `nps`), not a satisfaction
    dimension asked alongside it."""
    return and_(
        events.type == "survey",
        events.score.is_not(None),
        or_(events.category.is_(None), events.category == "nps"),
    )


def _resolved(as_of: datetime) -> Select[Any]:
    """The ids of feedback items a `feedback_resolved` event refers to by `as_of`."""
    resolution = EVENTS.alias()
    return select(resolution.c.ref).where(
        resolution.c.type == "feedback_resolved",
        resolution.c.ref.is_not(None),
        resolution.c.occurred_at <= as_of,
    )


def _open_feedback(as_of: datetime, ids: Sequence[str] | None) -> Subquery:
    """Feedback items with no `feedback_resolved` event referring to them by `as_of`.

    `NOT IN` over the set of resolved ids, not a correlated `NOT EXISTS`: both databases
    hash or index the set once, whatever their statistics say.
    """
    query = (
        select(
            EVENTS.c.customer_id,
            *(_count(EVENTS.c.level == level).label(f"open_{level}") for level in FEEDBACK_LEVELS),
            _count(EVENTS.c.category == "complaint").label("open_complaints"),
        )
        .where(
            EVENTS.c.type == "feedback",
            EVENTS.c.occurred_at <= as_of,
            EVENTS.c.id.not_in(_resolved(as_of)),
        )
        .group_by(EVENTS.c.customer_id)
    )
    if ids is not None:
        query = query.where(EVENTS.c.customer_id.in_(ids))
    return query.subquery("open_fb")


def with_open_complaints(
    connection: Connection, as_of: datetime, customer_ids: Sequence[str]
) -> set[str]:
    """Which of these customers have an open complaint as of `as_of`: exactly the
    customers whose `open_complaints` fact is above 0 then."""
    query = select(EVENTS.c.customer_id).where(
        EVENTS.c.customer_id.in_(list(customer_ids)),
        EVENTS.c.type == "feedback",
        EVENTS.c.category == "complaint",
        EVENTS.c.occurred_at <= as_of,
        EVENTS.c.id.not_in(_resolved(as_of)),
    )
    return set(connection.scalars(query.distinct()))


def iter_customer_facts(
    connection: Connection,
    as_of: datetime,
    params: FactParameters,
    customer_ids: Sequence[str] | None = None,
    batch_size: int = 5_000,
) -> Iterator[dict[str, Any]]:
    """Yields every customer's facts as of `as_of` (aware), ordered by customer id.

    `params` is required: they come from the rules in force (`rapport.services.rules`),
    and a default here once made `customers show` disagree with evaluate on tiers."""
    if as_of.utcoffset() is None:
        raise ValueError("as_of must carry a timezone offset")
    as_of = as_of.astimezone(UTC)
    agg = _event_aggregates(as_of, params, customer_ids)
    open_fb = _open_feedback(as_of, customer_ids)
    survey = EVENTS.alias()
    survey_score = (  # an index lookup on (customer_id, occurred_at); a tie takes the best score
        select(func.max(survey.c.score))
        .where(
            survey.c.customer_id == CUSTOMERS.c.id,
            survey.c.occurred_at == agg.c.survey_at,
            _nps_answer(survey.c),
        )
        .scalar_subquery()
    )
    query = (
        select(
            *PROFILE_COLUMNS,
            *(column for column in agg.c if column.name != "customer_id"),
            *(column for column in open_fb.c if column.name != "customer_id"),
            survey_score.label("survey_score"),
        )
        .select_from(
            CUSTOMERS.outerjoin(agg, agg.c.customer_id == CUSTOMERS.c.id).outerjoin(
                open_fb, open_fb.c.customer_id == CUSTOMERS.c.id
            )
        )
        .order_by(CUSTOMERS.c.id)
    )
    if customer_ids is not None:
        query = query.where(CUSTOMERS.c.id.in_(customer_ids))
    # On the statement, not the connection: a connection option would outlive this query.
    result = connection.execute(query.execution_options(yield_per=batch_size))
    for row in result.mappings():
        yield derive_facts(_aggregates(row, params), as_of, params)


def _aggregates(row: Any, params: FactParameters) -> CustomerAggregates:
    return CustomerAggregates(
        customer_id=row["id"],
        segment=row["segment"],
        locale=row["locale"],
        timezone=row["timezone"],
        birthday=row["birthday"],
        account_manager=row["account_manager"],
        consents={ch: bool(row[f"consent_{ch}"]) for ch in MESSAGE_CHANNELS},
        spend_12m=float(row["spend_12m"] or 0),
        orders_12m=int(row["orders_12m"] or 0),
        lifetime_spend=float(row["lifetime_spend"] or 0),
        lifetime_orders=int(row["lifetime_orders"] or 0),
        first_purchase_at=row["first_purchase_at"],
        last_purchase_at=row["last_purchase_at"],
        purchases_recent=int(row["purchases_recent"] or 0),
        spend_recent=float(row["spend_recent"] or 0),
        purchases_previous=int(row["purchases_previous"] or 0),
        spend_previous=float(row["spend_previous"] or 0),
        logins_30d=int(row["logins_30d"] or 0),
        logins_prev_30d=int(row["logins_prev_30d"] or 0),
        last_contact_at={ch: row[f"contact_{ch}"] for ch in CONTACT_CHANNELS},
        open_feedback={level: int(row[f"open_{level}"] or 0) for level in FEEDBACK_LEVELS},
        open_complaints=int(row["open_complaints"] or 0),
        complaints_recent=int(row["complaints_recent"] or 0),
        last_complaint_at=row["last_complaint_at"],
        last_survey_score=row["survey_score"],
        last_survey_at=row["survey_at"],
        product_purchases={
            window: int(row[f"product_{index}"] or 0)
            for index, window in enumerate(params.product_windows)
        },
    )


def facts_of(
    connection: Connection, as_of: datetime, params: FactParameters, customer_id: str
) -> dict[str, Any] | None:
    """One customer's facts as of `as_of`, or None for an unknown id: what
    `customers show`, `explain`, `preview` and the API's facts endpoint look at."""
    return next(iter_customer_facts(connection, as_of, params, [customer_id]), None)
