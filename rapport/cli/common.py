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
from rapport.services.terminal import output
from storage.db import make_engine
from storage.migrate import check_schema

AS_OF_HELP = "ISO 8601 time; without an offset, in RAPPORT_TIMEZONE. Default: now."

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
        raise fail(f"configuration: {problems}") from None


def signing_settings(sends_mail: bool = True) -> Settings:
    """The settings of a command that signs or checks unsubscribe links (`api`,
    `dispatch`, `run`, `serve`): it stops here, with the fix, when RAPPORT_SECRET_KEY is
    one anyone knows. One that `sends_mail` is warned of links real mail cannot use."""
    config = settings()
    try:
        config.signing_key()
    except InsecureSecret as error:
        raise fail(str(error)) from None
    if sends_mail and (warning := public_url_warning(config)):
        errors.print(f"[yellow]rapport: warning:[/yellow] {warning}", highlight=False)
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
    except ValueError as error:
        raise fail(str(error)) from None


def moment_option(value: str | None, flag: str) -> datetime | None:
    """An optional time (`--since`) read as `--as-of` is; None when not given."""
    if value is None:
        return None
    try:
        return parse_moment(value, settings().timezone)
    except ValueError as error:
        raise fail(f"{flag}: {error}") from None


def zone_option(value: str | None) -> str:
    """`--tz`: a timezone to show times in, checked; RAPPORT_TIMEZONE when not given."""
    if value is None:
        return settings().timezone
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"--tz: unknown timezone {value!r} (e.g. Asia/Shanghai, UTC)") from None
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
        ruleset, _ = rules_in_force(
            database(), config.rules_dir, config.templates_dir, datetime.now(UTC), record=record
        )
    except NoRulesInForce as error:
        raise fail(f"{error}; run `rapport rules check`") from None
    return ruleset


def event_option(value: str | None) -> dict[str, Any] | None:
    """`--event` as a JSON object, or None when not given."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise fail(f"--event is not JSON: {error.msg}") from None
    if not isinstance(parsed, dict):
        raise fail('--event is a JSON object, e.g. \'{"type": "feedback"}\'')
    return parsed


def firings_line(summary: RunSummary, dry_run: bool) -> str:
    """`N fired (rule ×n, …); M message(s), K task(s) planned` (a dry run plans nothing)."""
    total = sum(summary.firings.values())
    rules = ", ".join(f"{rule} ×{n}" for rule, n in sorted(summary.firings.items()))
    text = f"{total} {'would fire' if dry_run else 'fired'}" + (f" ({rules})" if rules else "")
    if dry_run:
        return text
    return f"{text}; {summary.messages} message(s), {summary.tasks} task(s) planned"
