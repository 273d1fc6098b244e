"""`rapport rules`: check, test, and export the schema and reference of the rule language."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from actions.templates import template_checker
from engine.evaluate import Evaluator
from engine.loader import load_rules
from engine.problems import Severity
from engine.reference import README_MARKERS, reference_markdown, replace_reference
from engine.ruletests import load_cases, rule_test_schema, run_case, untested_rules
from engine.schema import rule_schema
from rapport.cli.common import console, errors, fail, print_json, settings
from rapport.services.settings import STAFF_LOCALES
from rapport.services.staff_language import _, use_locale

app = typer.Typer(help="Check, test and document the YAML rules.", no_args_is_help=True)

DirArgument = Annotated[
    Path | None, typer.Argument(help="Rules directory (default: RAPPORT_RULES_DIR).")
]


@app.command("check")
def check(
    directory: DirArgument = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="{valid, revision, rules, problems: [{path, line, column, code, message, "
            "severity}]} as JSON (exit 1 still means the rules were not applied).",
        ),
    ] = False,
) -> None:
    """Validate every rule file and the templates they use; list every problem."""
    config = settings()
    folder = directory or config.rules_dir
    result = load_rules(folder, template_checker(config.templates_dir))
    if as_json:
        ruleset = result.ruleset
        print_json(
            {
                "valid": ruleset is not None,
                "revision": ruleset.revision if ruleset else None,
                "rules": len(ruleset.rules) if ruleset else 0,
                "problems": [asdict(problem) for problem in result.problems],
            }
        )
        if ruleset is None:
            raise typer.Exit(code=1)
        return
    for problem in result.problems:
        stream = errors if problem.severity is Severity.ERROR else console
        stream.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if result.ruleset is None:
        raise fail(
            _("{count} problem(s) in {folder}; the rules were not applied").format(
                count=len(result.errors), folder=folder
            )
        )
    rules = result.ruleset.rules
    line = _("{folder}: {count} rules valid ({enabled} enabled), revision {revision}")
    console.print(
        line.format(
            folder=folder,
            count=len(rules),
            enabled=sum(r.enabled for r in rules),
            revision=result.ruleset.revision[:12],
        )
    )


@app.command("schema")
def schema(
    output: Annotated[Path | None, typer.Option(help="Write to this file instead.")] = None,
    tests: Annotated[
        bool, typer.Option("--tests", help="The schema of rule-test files instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of rule files (committed as rules/rules.schema.json) or, with
    --tests, of rule-test files (rules/tests/tests.schema.json)."""
    document = rule_test_schema() if tests else rule_schema()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@app.command("reference")
def reference(
    write: Annotated[
        Path | None, typer.Option(help="Update the reference section of this README.")
    ] = None,
    locale: Annotated[
        str,
        typer.Option(
            help="Edition: en (rules/README.md) or zh-CN (rules/README.zh-CN.md), "
            "translated through the staff catalogue."
        ),
    ] = "en",
) -> None:
    """Print the rule-language reference generated from the vocabulary."""
    if locale not in STAFF_LOCALES:
        raise fail(
            _("--locale {locale}: one of {locales}").format(
                locale=repr(locale), locales=", ".join(STAFF_LOCALES)
            )
        )
    with use_locale(locale):
        text = reference_markdown(_)
    if write is None:
        typer.echo(text, nl=False)
        return
    try:
        write.write_text(
            replace_reference(write.read_text(encoding="utf-8"), text), encoding="utf-8"
        )
    except ValueError:
        raise fail(
            _("{file} lacks the markers {markers}").format(
                file=write, markers=" and ".join(README_MARKERS)
            )
        ) from None


@app.command("test")
def test(directory: DirArgument = None) -> None:
    """Run the rule tests in DIR/tests/*.yaml: given facts, these rules fire, those do not."""
    folder = directory or settings().rules_dir
    result = load_rules(folder)
    if result.ruleset is None:
        raise fail(_("{folder} has invalid rules; run `rapport rules check`").format(folder=folder))
    cases, problems = load_cases(folder / "tests", result.ruleset)
    for problem in problems:
        errors.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if problems:
        raise fail(_("{count} problem(s) in the rule tests").format(count=len(problems)))
    if not cases:
        raise fail(_("no rule tests found in {folder}").format(folder=folder / "tests"))
    evaluator = Evaluator(result.ruleset)
    failed = 0
    for case in cases:
        outcome = run_case(case, evaluator)
        if not outcome.passed:
            failed += 1
            fired = ", ".join(outcome.fired) or "nothing"
            for failure in outcome.failures:
                errors.print(
                    f"{case.path}:{case.line}: {case.name}: {failure} (fired: {fired})",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
    for rule_id in untested_rules(cases, result.ruleset):
        console.print(
            _("warning: rule {id} has no case that expects it to fire").format(id=rule_id)
        )
    console.print(
        _("{passed} passed, {failed} failed").format(passed=len(cases) - failed, failed=failed)
    )
    if failed:
        raise typer.Exit(code=1)
