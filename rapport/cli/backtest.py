"""`rapport backtest`: what the rules would have done over a stretch of stored history."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from datetime import date, timedelta
from pathlib import Path
from time import monotonic
from typing import Annotated, Any

import typer

from actions.templates import template_checker
from engine.durations import parse_duration
from engine.loader import load_rules
from engine.model import RuleSet
from engine.policy import parse_clock
from rapport.backtest.results import Run, compare, summarize
from rapport.backtest.runner import default_workers, run_backtest
from rapport.backtest.sweep import Sweep, SweepError
from rapport.backtest.sweep_results import (
    sweep_columns,
    sweep_document,
    sweep_headline,
    sweep_table,
)
from rapport.backtest.tables import comparison_tables, headline, summary_tables
from rapport.backtest.timeline import Window
from rapport.cli.backtest_ranking import (
    DEFAULT_CLOCK,
    TOP_HELP,
    print_ranking,
    ranking,
    ranking_options,
)
from rapport.cli.common import console, database, errors, fail, settings
from rapport.report.sweep_page import sweep_page
from rapport.services.staff_language import _
from rapport.services.terminal import progress_to


def backtest(
    first: Annotated[
        str | None, typer.Option("--from", help="First day replayed, e.g. 2025-11-01.")
    ] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day replayed (included).")] = None,
    step: Annotated[str, typer.Option(help="Time between evaluations: 1d, 12h, 1w …")] = "1d",
    at: Annotated[
        str,
        typer.Option(
            help="Time of day of the steps, as the daily evaluate-rules flow runs; with "
            "--top, the day ranked: 2026-01-05 (at 08:00) or '2026-01-05 09:30'."
        ),
    ] = DEFAULT_CLOCK,
    rules: Annotated[
        Path | None, typer.Option(help="Rules directory; default RAPPORT_RULES_DIR.")
    ] = None,
    compare_with: Annotated[
        Path | None,
        typer.Option("--compare", help="Also replay these rules and show the difference."),
    ] = None,
    horizon: Annotated[
        str, typer.Option(help="Churn outcome window: a flagged customer left if no purchase.")
    ] = "90d",
    warmup: Annotated[
        str, typer.Option(help="Replayed before --from and not counted, so re-entry settles.")
    ] = "30d",
    json_file: Annotated[
        str | None, typer.Option("--json", help="Write the figures as JSON here ('-': stdout).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Processes replaying customers; default: CPUs.")
    ] = None,
    top: Annotated[str | None, typer.Option(metavar="K", help=TOP_HELP)] = None,
    sweep_spec: Annotated[
        str | None,
        typer.Option(
            "--sweep",
            help="Replay one threshold at several values: RULE.FACT=1.5,2,3 or =1.5..3:0.5.",
        ),
    ] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="With --sweep: write the page with its charts.")
    ] = None,
) -> None:
    """Replay stored history through the rules (nothing is sent or written) and show what
    they would have done: firings, messages per customer, work per owner, SLA breaches and
    how well each churn signal predicted customers who left. With --top: who was most
    overdue on one day, and what they did next."""
    config = settings()
    if top is not None:
        options = ranking_options(top, at, (first, last, compare_with, sweep_spec, html_file))
        directory = rules or config.rules_dir
        ranked_rules = (directory, _valid_rules(directory, config.templates_dir))
        workers = workers or default_workers()
        ranked = ranking(database(), ranked_rules, options, horizon, config.timezone, workers)
        if json_file is not None:
            _write_json(ranked, json_file)
        if json_file != "-":
            print_ranking(ranked)
        return
    if first is None or last is None:
        raise fail(_("--from and --to are needed: the days to replay (or --top K --at DAY)"))
    window = _window(first, last, step, at, horizon, warmup, config.timezone)
    directories = [rules or config.rules_dir, *([compare_with] if compare_with else [])]
    rulesets = [
        (directory, _valid_rules(directory, config.templates_dir)) for directory in directories
    ]
    sweep = _sweep(sweep_spec, html_file, compare_with, rulesets[0][1])
    engine = database()
    started = monotonic()
    quiet = json_file == "-"
    replaying = f"replaying {len(window.steps)} steps per customer"
    # `--json -` keeps the terminal for the document alone
    shown = nullcontext(None) if quiet else progress_to(errors, replaying)
    with shown as on_progress:
        replayed = run_backtest(
            engine,
            rulesets,
            window,
            workers=workers or default_workers(),
            progress=on_progress,
            sweep=sweep,
        )
    if sweep is not None:
        directory, ruleset = rulesets[0]
        variants = sweep.variants(ruleset)
        swept = sweep_document(
            sweep,
            sweep.target(ruleset),
            directory,
            ruleset.revision,
            [
                summarize(Run(directory, variant.ruleset, tally), window, replayed.history_end)
                for variant, tally in zip(variants, replayed.tallies, strict=True)
            ],
        )
        _write_sweep(swept, json_file, html_file, quiet, started)
        return
    summaries = [
        summarize(Run(directory, ruleset, tally), window, replayed.history_end)
        for (directory, ruleset), tally in zip(rulesets, replayed.tallies, strict=True)
    ]
    document: dict[str, Any] = summaries[0] if len(summaries) == 1 else compare(*summaries)
    if json_file is not None:
        _write_json(document, json_file)
    if quiet:
        return
    for summary in summaries:
        console.print(headline(summary), highlight=False)
        for table in summary_tables(summary):
            console.print(table)
    if len(summaries) == 2:
        for table in comparison_tables(document):
            console.print(table)
    console.print(f"replayed in {monotonic() - started:.1f} s", highlight=False)


def _sweep(
    spec: str | None, html_file: Path | None, compare_with: Path | None, ruleset: RuleSet
) -> Sweep | None:
    """The parsed `--sweep`, checked against the rules before anything is replayed."""
    if spec is None:
        if html_file is not None:
            raise fail(_("--html is the page of a sweep: add --sweep RULE.FACT=V1,V2,…"))
        return None
    if compare_with is not None:
        raise fail(_("--sweep replays variants of --rules: leave out --compare"))
    try:
        sweep = Sweep.parse(spec)
        sweep.target(ruleset)
    except SweepError as error:
        raise fail(str(error)) from None
    return sweep


def _write_sweep(
    document: dict[str, Any],
    json_file: str | None,
    html_file: Path | None,
    quiet: bool,
    started: float,
) -> None:
    if json_file is not None:
        _write_json(document, json_file)
    if html_file is not None:
        _write_text(sweep_page(document, sweep_columns()), str(html_file))
    if quiet:
        return
    console.print(sweep_headline(document), highlight=False)
    console.print(sweep_table(document))
    console.print(f"replayed in {monotonic() - started:.1f} s", highlight=False)


def _window(
    first: str, last: str, step: str, at: str, horizon: str, warmup: str, timezone: str
) -> Window:
    try:
        return Window(
            first=_day(first, "--from"),
            last=_day(last, "--to"),
            at=parse_clock(at),
            timezone=timezone,
            step=parse_duration(step),
            warmup=timedelta(0) if warmup.strip() in ("0", "0d") else parse_duration(warmup),
            horizon=parse_duration(horizon),
        )
    except ValueError as error:
        raise fail(str(error)) from None


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise fail(
            _("{option} {value} is not a date such as {example}").format(
                option=option, value=repr(value), example="2026-01-01"
            )
        ) from None


def _valid_rules(directory: Path, templates: Path) -> RuleSet:
    """The directory's rules when valid as a whole, templates included; else every
    problem on stderr and a one-line failure."""
    result = load_rules(directory, template_checker(templates))
    if result.ruleset is None:
        for problem in result.errors:
            errors.print(str(problem), highlight=False, markup=False)
        raise fail(
            _("{directory}: {count} problems; nothing was replayed").format(
                directory=directory, count=len(result.errors)
            )
        )
    return result.ruleset


def _write_json(document: dict[str, Any], target: str) -> None:
    _write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", target)


def _write_text(text: str, target: str) -> None:
    if target == "-":
        sys.stdout.write(text)
        return
    try:
        Path(target).write_text(text, encoding="utf-8")
    except OSError as error:
        raise fail(
            _("cannot write {target}: {problem}").format(target=target, problem=error.strerror)
        ) from None
