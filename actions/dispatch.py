"""Dispatching the outbox: claim a batch, decide, render, send, record — every message
ends in a recorded state (sent, deferred, suppressed, retrying or failed), never silent.

Delivery is at least once with the same key: a claim is committed before sending and
the outcome after, so a crash in between leaves a claimed row whose lease expires and
which is sent again with the same idempotency key (and the same email Message-ID).
A customer's messages are handled one after another (the frequency cap counts what
was just sent). Everything else runs concurrently across customers — guards,
rendering, and the sender's preparation (for SMTP: connecting, MAIL FROM, RCPT TO) —
but the hand-over itself and the recording of its outcome pass a `Turnstile` one
message at a time: a SIGKILL can then leave at most one message accepted by the
provider yet unrecorded, which is the one repeat (with the same key) a crash may cause.
Run several dispatchers for more throughput.

A message is the unit of failure. Whatever goes wrong with one message — its template
fails for this customer, its address cannot be sent, the channel refuses it or raises —
marks that message failed with the reason, masked (`actions.privacy`), and the batch
goes on: retrying would fail the same way. Only a temporary failure is retried, and
only an error recording an outcome (the database) ends the batch, after every other
customer's outcome is recorded; its message stays claimed until the lease expires.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from actions.channels.base import Envelope, Sender, TemporaryFailure, Ticket, Turnstile
from actions.guards import HOLDS, OPEN_COMPLAINT, Recipient, decide
from actions.planning import steps_after_sending
from actions.privacy import error_text, mask
from actions.templates import TemplateRenderError, Templates, message_context
from actions.unsubscribe import unsubscribe_mailto, unsubscribe_url
from engine.facts import MESSAGE_CHANNELS
from engine.model import RuleSet
from storage.customers import customer_rows
from storage.events import event_fields, events_by_id, products_bought, store_steps
from storage.facts import iter_customer_facts
from storage.outbox import (
    ClaimedMessage,
    capped_sent_since,
    claim_due,
    mark_failed,
    mark_sent,
    mark_suppressed,
    postpone,
    record_contact,
    wake_held,
)
from storage.planned import PlannedStep


@dataclass(frozen=True)
class DispatchSettings:
    worker: str
    company: dict[str, str]
    public_url: str
    secret_key: str
    unsubscribe_mailto: str | None = None  # offered after the link in List-Unsubscribe
    lease: timedelta = timedelta(minutes=5)
    batch: int = 200
    max_attempts: int = 8
    backoff: timedelta = timedelta(minutes=1)  # doubled per attempt
    backoff_cap: timedelta = timedelta(hours=2)


@dataclass
class DispatchReport:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # sent, deferred, ...
    reasons: Counter[str] = field(default_factory=Counter)  # guard or failure codes
    channels: Counter[str] = field(default_factory=Counter)  # sent per channel
    failures: Counter[str] = field(default_factory=Counter)  # masked error texts
    unavailable: Counter[str] = field(default_factory=Counter)  # temporary failures per channel

    def add(self, other: DispatchReport) -> None:
        self.claimed += other.claimed
        self.outcomes.update(other.outcomes)
        self.reasons.update(other.reasons)
        self.channels.update(other.channels)
        self.failures.update(other.failures)
        self.unavailable.update(other.unavailable)


def retry_delay(attempts: int, settings: DispatchSettings) -> timedelta:
    """Exponential backoff: 1, 2, 4, … minutes, capped."""
    return min(settings.backoff * 2 ** max(attempts - 1, 0), settings.backoff_cap)


def triggering_events(connection: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The events messages were planned for, as templates see them."""
    return {key: event_fields(row) for key, row in events_by_id(connection, ids).items()}


def personal_values(customer: Mapping[str, Any]) -> tuple[str, ...]:
    """What identifies this customer in text a provider or a template error may quote:
    masked in every reason stored for their messages."""
    return tuple(
        str(customer[name]) for name in ("name", "email", "phone", "wechat") if customer.get(name)
    )


def recipient_for(customer: Mapping[str, Any], facts: Mapping[str, Any]) -> Recipient:
    """The guards' view of a customer: consents, addresses and stated preference."""
    consents = {ch: bool(customer[f"consent_{ch}"]) for ch in MESSAGE_CHANNELS}
    preferred = str((customer["attributes"] or {}).get("preferred_channels", ""))
    return Recipient(
        customer_id=customer["id"],
        timezone=customer["timezone"],
        consents=consents,
        addresses={
            "email": customer["email"],
            "sms": customer["phone"],
            "wechat": customer["wechat"],
            "app": customer["id"] if consents["app"] else None,
        },
        preferred_channels=tuple(c for c in preferred.replace(",", " ").split() if c),
        tier=facts["tier"],
        segment=facts["segment"],
        open_complaints=facts["open_complaints"],
    )


async def dispatch_batches(
    run_batch: Callable[[], Awaitable[DispatchReport]],
    senders: Mapping[str, Sender],
    max_batches: int,
) -> DispatchReport:
    """Runs `run_batch` until a batch claims nothing (or `max_batches`), then closes the
    senders: the loop of `rapport dispatch`, the `dispatch-outbox` flow and the
    benchmarks, whatever one batch is (a plain call or a Prefect task)."""
    total = DispatchReport()
    try:
        for _ in range(max_batches):
            report = await run_batch()
            total.add(report)
            if report.claimed == 0:
                break
    finally:
        for sender in set(senders.values()):
            await sender.close()
    return total


async def dispatch_once(
    engine: Engine,
    senders: Mapping[str, Sender],
    templates: Templates,
    ruleset: RuleSet,
    now: datetime,
    settings: DispatchSettings,
) -> DispatchReport:
    """One batch: wake what a resolved complaint held, claim, then settle every claimed
    message."""
    report = DispatchReport()
    with engine.begin() as connection:
        wake_held(connection, OPEN_COMPLAINT, now)
    batch = claim_due(engine, settings.worker, now, settings.lease, settings.batch)
    report.claimed = len(batch)
    if not batch:
        return report
    ids = sorted({m.customer_id for m in batch})
    by_customer: dict[str, list[ClaimedMessage]] = defaultdict(list)
    for message in batch:
        by_customer[message.customer_id].append(message)
    with engine.connect() as connection:
        customers = customer_rows(connection, ids)
        facts = {
            f["customer_id"]: f
            for f in iter_customer_facts(connection, now, ruleset.parameters, ids)
        }
        policy = ruleset.policy
        counts = capped_sent_since(connection, ids, now - policy.cap_window, policy.cap_counts)
        events = triggering_events(connection, [m.event_id for m in batch if m.event_id])
        # Only a message whose event bought a product the affinity table lists shows
        # suggestions; the owned products are read for those customers alone.
        suggesting = {
            m.customer_id
            for m in batch
            if m.event_id and ruleset.suggestions_for(events.get(m.event_id, {}).get("product"))
        }
        owned = products_bought(connection, sorted(suggesting), now)
        connection.commit()
        # Outcomes are recorded on this one connection, each in a transaction of its
        # own; recording never awaits, so the customers' coroutines cannot interleave.
        job = _Job(connection, senders, templates, ruleset, now, settings, report, events, owned)
        settled = await asyncio.gather(
            *(
                job.customer(messages, customers[cid], facts[cid], counts.get(cid, 0))
                for cid, messages in by_customer.items()
            ),
            return_exceptions=True,
        )
    for outcome in settled:
        if isinstance(outcome, BaseException):
            raise outcome
    return report


@dataclass
class _Job:
    connection: Connection
    senders: Mapping[str, Sender]
    templates: Templates
    ruleset: RuleSet
    now: datetime
    settings: DispatchSettings
    report: DispatchReport
    events: dict[str, dict[str, Any]]
    owned: dict[str, frozenset[str]]  # products each customer bought, for cross-sell
    turnstile: Turnstile = field(default_factory=Turnstile)

    async def customer(
        self,
        messages: list[ClaimedMessage],
        customer: dict[str, Any],
        facts: dict[str, Any],
        capped_sent: int,
    ) -> None:
        recipient = recipient_for(customer, facts)
        counted = self.ruleset.policy.cap_counts
        for message in messages:
            sent = await self.message(message, customer, facts, recipient, capped_sent)
            capped_sent += sent and message.purpose in counted

    async def message(
        self,
        message: ClaimedMessage,
        customer: dict[str, Any],
        facts: dict[str, Any],
        recipient: Recipient,
        capped_sent: int,
    ) -> bool:
        worker, now = self.settings.worker, self.now
        policy = self.ruleset.policy
        personal = personal_values(customer)
        try:
            decision = decide(message, recipient, policy, now, capped_sent, message.held_since)
        except Exception as error:  # bad data on this customer: it fails the same way again
            return self._fail(message, None, f"could not decide: {error_text(error, personal)}")
        self.report.reasons[decision.code] += 1
        if decision.outcome == "suppress":
            by_hold = decision.code in HOLDS  # gives the rule's re-entry back
            return self._settle(
                "suppressed", mark_suppressed, message.id, worker, now, decision.reason, by_hold
            )
        if decision.outcome == "defer":
            assert decision.send_at is not None
            since = message.held_since or now if decision.code == OPEN_COMPLAINT else None
            return self._settle(
                "deferred",
                postpone,
                message.id,
                worker,
                now,
                decision.send_at,
                decision.reason,
                None,
                since,
            )
        channel = decision.channel
        assert channel is not None
        sender = self.senders.get(channel)
        if sender is None:
            return self._fail(message, channel, f"no sender configured for {channel}")
        try:
            envelope = self._envelope(message, customer, facts, recipient, channel)
        except Exception as error:  # the template fails for this customer, every time
            where, cause = "", error
            if isinstance(error, TemplateRenderError):  # the file and line an editor needs
                where = f"{error.path.name}:{error.line}: {error.part}: "
                cause = error.cause
            failed = (
                f"template {message.template!r} did not render: "
                f"{where}{error_text(cause, personal)}"
            )
            return self._fail(message, channel, failed)
        ticket = self.turnstile.ticket()
        try:
            return await self._deliver(message, sender, envelope, channel, ticket, personal)
        finally:
            ticket.release()

    async def _deliver(
        self,
        message: ClaimedMessage,
        sender: Sender,
        envelope: Envelope,
        channel: str,
        ticket: Ticket,
        personal: tuple[str, ...],
    ) -> bool:
        """Send, then record the outcome while `ticket` is still held."""
        worker, now = self.settings.worker, self.now
        try:
            delivery = await sender.send(envelope, ticket)
        except TemporaryFailure as error:
            self.report.reasons["temporary_failure"] += 1
            self.report.unavailable[channel] += 1
            if message.attempts >= self.settings.max_attempts:
                gave_up = f"gave up after {message.attempts} attempts: {mask(str(error), personal)}"
                return self._fail(message, channel, gave_up)
            retry_at = now + retry_delay(message.attempts, self.settings)
            return self._settle(
                "retrying",
                postpone,
                message.id,
                worker,
                now,
                retry_at,
                f"retry: attempt {message.attempts} failed",
                mask(str(error), personal),
            )
        except Exception as error:  # a channel that raises for a message raises again
            return self._fail(message, channel, f"{channel} failed: {error_text(error, personal)}")
        if not delivery.accepted:
            return self._fail(message, channel, mask(str(delivery.permanent_error), personal))
        reply = mask(delivery.reply, personal)
        with self.connection.begin():
            if mark_sent(self.connection, message.id, worker, channel, reply, now):
                record_contact(self.connection, message, channel, now)
                store_steps(self.connection, self._follow_ups(message), now)
        self.report.outcomes["sent"] += 1
        self.report.channels[channel] += 1
        return True

    def _follow_ups(self, message: ClaimedMessage) -> list[PlannedStep]:
        """The steps its rule counts from this message's delivery (`from: message`);
        none when the rules in force no longer have the rule."""
        try:
            rule = self.ruleset.rule(message.rule_id)
        except KeyError:
            return []
        return steps_after_sending(rule, message.key, message.customer_id, self.now)

    def _envelope(
        self,
        message: ClaimedMessage,
        customer: dict[str, Any],
        facts: dict[str, Any],
        recipient: Recipient,
        channel: str,
    ) -> Envelope:
        event = self.events.get(message.event_id) if message.event_id else None
        product = (event or {}).get("product")
        link = unsubscribe_url(
            self.settings.public_url, self.settings.secret_key, message.customer_id, channel
        )
        context = message_context(
            customer,
            facts,
            self.settings.company,
            link,
            event,
            self.ruleset.suggestions_for(product, self.owned.get(message.customer_id, ())),
            self._reply_by(event),
        )
        rendered = self.templates.render(message.template, customer.get("locale") or "", context)
        return Envelope(
            key=message.key,
            channel=channel,
            recipient=str(recipient.addresses[channel]),
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            customer_id=message.customer_id,
            locale=rendered.locale,
            list_unsubscribe=self._list_unsubscribe(message, channel, link),
        )

    def _list_unsubscribe(
        self, message: ClaimedMessage, channel: str, link: str
    ) -> tuple[str, ...]:
        """The List-Unsubscribe URIs of an email: every purpose but service (the ones
        the guards treat as marketing) names its link, and the mailbox when configured."""
        if channel != "email" or message.purpose == "service":
            return ()
        mailbox = self.settings.unsubscribe_mailto
        return (link,) if mailbox is None else (link, unsubscribe_mailto(mailbox, link))

    def _reply_by(self, event: dict[str, Any] | None) -> datetime | None:
        """A feedback item's first-response deadline: the one its first task has."""
        if event is None or event["type"] != "feedback":
            return None
        levels = self.ruleset.policy.service_levels
        return levels.target(event.get("level"), "first_response", event["occurred_at"])

    def _fail(self, message: ClaimedMessage, channel: str | None, error: str) -> bool:
        """Records a permanent failure on `channel`: no sender for it, the message could
        not be prepared, the provider refused it or raised, or the retries ran out. One
        place, so all are counted alike."""
        worker = self.settings.worker
        return self._settle("failed", mark_failed, message.id, worker, self.now, channel, error)

    def _settle(self, outcome: str, transition: Any, *arguments: Any) -> bool:
        if outcome in ("failed", "retrying"):
            error = str(arguments[-1])  # every failing transition ends with the error
            self.report.failures[f"{outcome}: {error[:160]}"] += 1
        with self.connection.begin():
            transition(self.connection, *arguments)
        self.report.outcomes[outcome] += 1
        return False
