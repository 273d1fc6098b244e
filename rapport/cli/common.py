"""What every subcommand shares: settings, the database, one-line failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import Engine

from engine.model import RuleSet
from rapport.services.clock import as_of_or_now, parse_moment
from rapport.services.delivery import public_url_warning
from rapport.services.rules import NoRulesInForce, rules_in_force
from rapport.services.scheduled import RunSummary
from rapport.services.settings import InsecureSecret, Settings, get_settings
from rapport.services.staff_language import _
from rapport.services.terminal import output
from storage.db import make_engine
from storage.migrate import check_schema

AS_OF_HELP = "ISO 8601 time; without an offset, in RAPPORT_TIMEZONE. Default: now."

SECRET_COMMAND = (
    "export RAPPORT_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
)
EVENT_EXAMPLE = '\'{"type": "feedback"}\''

console = output()
errors = output(stderr=True)


def fail(reason: str) -> typer.Exit:
    """Prints `rapport: reason` on stderr; raise the returned Exit (code 1)."""
    errors.print(f"[red]rapport:[/red] {reason}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as error:
        problems = "; ".join(
            f"RAPPORT_{str(item['loc'][0]).upper()}: {item['msg'].removeprefix('Value error, ')}"
            for item in error.errors()
        )
        raise fail(_("configuration: {problems}").format(problems=problems)) from None


def signing_settings(sends_mail: bool = True) -> Settings:
    """The settings of a command that signs or checks unsubscribe links (`api`,
    `dispatch`, `run`, `serve`): it stops here, with the fix, when RAPPORT_SECRET_KEY is
    one anyone knows. One that `sends_mail` is warned of links real mail cannot use."""
    config = settings()
    try:
        config.signing_key()
    except InsecureSecret:
        raise fail(_insecure_secret(config)) from None
    if sends_mail and (warning := public_url_warning(config)):
        label = _("warning:")
        errors.print(f"[yellow]rapport: {label}[/yellow] {warning}", highlight=False)
    return config


def database(ready: bool = True) -> Engine:
    """The configured database; with `ready`, fails unless its schema is current."""
    engine = make_engine(settings().database_url)
    if ready:
        try:
            check_schema(engine)
        except Exception as error:  # schema missing, unreachable server, bad URL
            raise fail(str(error).splitlines()[0]) from None
    return engine


def as_of_option(value: str | None) -> datetime:
    """`--as-of` parsed in the configured timezone, or now."""
    try:
        return as_of_or_now(value, settings().timezone)
    except ValueError:
        raise fail(not_a_moment(value or "")) from None


def not_a_moment(text: str) -> str:
    """Why `text` is not a time (the one ValueError of `parse_moment`), in the staff
    language: the clock serves the API too, so the CLI words it here."""
    shown = text if len(text) <= 40 else text[:40] + "…"  # an answer, not an echo
    return _("{value} is not an ISO 8601 time such as 2026-07-01T09:00+08:00").format(
        value=repr(shown)
    )


def _insecure_secret(config: Settings) -> str:
    """`InsecureSecret`'s refusal (settings cannot use the catalogue), with the fix."""
    if not config.secret_key.strip():
        problem = _("RAPPORT_SECRET_KEY is empty")
    else:
        problem = _("RAPPORT_SECRET_KEY is the documented default")
    return _(
        "{problem}, so anyone can sign unsubscribe links; set a random secret of your own, "
        "e.g. {command}"
    ).format(problem=problem, command=SECRET_COMMAND)


def moment_option(value: str | None, flag: str) -> datetime | None:
    """An optional time (`--since`) read as `--as-of` is; None when not given."""
    if value is None:
        return None
    try:
        return parse_moment(value, settings().timezone)
    except ValueError:
        raise fail(f"{flag}: {not_a_moment(value)}") from None


def zone_option(value: str | None) -> str:
    """`--tz`: a timezone to show times in, checked; RAPPORT_TIMEZONE when not given."""
    if value is None:
        return settings().timezone
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(
            _("--tz: unknown timezone {value} (e.g. Asia/Shanghai, UTC)").format(value=repr(value))
        ) from None
    return value


def print_json(value: Any) -> None:
    """`--json` output: dataclasses, datetimes (ISO 8601) and the like as JSON, the
    text as it is (not escaped), one document on stdout."""
    typer.echo(json.dumps(to_jsonable_python(value), ensure_ascii=False, indent=2))


def rules_for_run(record: bool) -> RuleSet:
    """The rules in force, as every entrance sees them; `record` stores a new valid
    revision, else nothing is written (dry runs and read-only commands)."""
    config = settings()
    try:
        ruleset, _revision = rules_in_force(
            database(), config.rules_dir, config.templates_dir, datetime.now(UTC), record=record
        )
    except NoRulesInForce as error:
        raise fail(
            _(
                "the rules are invalid ({count} problems) and no earlier revision is stored; "
                "run `rapport rules check`"
            ).format(count=len(error.problems))
        ) from None
    return ruleset


def event_option(value: str | None) -> dict[str, Any] | None:
    """`--event` as a JSON object, or None when not given."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise fail(_("--event is not JSON: {problem}").format(problem=error.msg)) from None
    if not isinstance(parsed, dict):
        raise fail(_("--event is a JSON object, e.g. {example}").format(example=EVENT_EXAMPLE))
    return parsed


def firings_line(summary: RunSummary, dry_run: bool) -> str:
    """`N fired (rule ×n, …); M message(s), K task(s) planned` (a dry run plans nothing)."""
    total = sum(summary.firings.values())
    rules = ", ".join(f"{rule} ×{n}" for rule, n in sorted(summary.firings.items()))
    text = (_("{count} would fire") if dry_run else _("{count} fired")).format(count=total)
    text += f" ({rules})" if rules else ""
    if dry_run:
        return text
    return _("{firings}; {messages} message(s), {tasks} task(s) planned").format(
        firings=text, messages=summary.messages, tasks=summary.tasks
    )
