"""Every broken rule file in `tests/rules_invalid/` is rejected with the problem it announces.

Each committed case starts with `# expect: CODE LINE [TEXT]`: the one error the loader must
report, the 1-based line it must be reported on and, optionally, text its message must
contain. A sub-folder is one case (a whole rules directory); the file holding the
expect line is the one the problem must point at. Cases too big or too empty to commit
(a huge file, an empty file, 61 rules) are generated below.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.loader import MAX_RULES_PER_TRIGGER, load_rules
from engine.problems import CODES, Severity
from engine.yamlsource import MAX_FILE_BYTES
from rapport.services.rules import rules_in_force
from storage.db import make_engine
from storage.migrate import upgrade_database
from storage.revisions import active_revision
from tests.paths import RULES_INVALID, RULESETS

CORPUS = RULES_INVALID
GOOD_RULES = RULESETS / "operators"
NOW = datetime(2026, 7, 1, tzinfo=UTC)
EXPECT = re.compile(rb"^# expect: (?P<code>[a-z0-9-]+) (?P<line>[1-9][0-9]*)(?: (?P<text>.+))?$")


@dataclass(frozen=True)
class Expectation:
    """The one error a case must produce."""

    code: str
    line: int
    text: str | None = None  # something the message must contain, e.g. a did-you-mean


@dataclass(frozen=True)
class Case:
    """A rules directory to load: file name -> bytes, and which file carries the problem."""

    name: str
    files: dict[str, bytes]
    carrier: str
    expect: Expectation


def expectation(content: bytes) -> Expectation | None:
    """The `# expect:` line at the top of a committed file, if it has one."""
    match = EXPECT.match(content.split(b"\n", 1)[0].rstrip(b"\r"))
    if match is None:
        return None
    text = match["text"].decode() if match["text"] else None
    return Expectation(match["code"].decode(), int(match["line"]), text)


def _committed_case(path: Path) -> Case:
    """One committed file, or one sub-folder with exactly one file carrying the expectation."""
    paths = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    files = {p.name: p.read_bytes() for p in paths}
    carriers = {name: e for name, content in files.items() if (e := expectation(content))}
    if len(carriers) != 1:
        raise ValueError(f"{path}: {len(carriers)} files with `# expect: CODE LINE`, need 1")
    ((carrier, expect),) = carriers.items()
    return Case(path.name, files, carrier, expect)


def committed_cases() -> list[Case]:
    """Every `*.yaml` file and every sub-folder of the corpus."""
    return [
        _committed_case(path)
        for path in sorted(CORPUS.iterdir())
        if path.is_dir() or path.suffix == ".yaml"
    ]


def _too_many_rules() -> Case:
    """61 distinct, valid scheduled rules; the 61st is one too many."""
    lines = ["rules:"]
    last_rule_line = 0
    for index in range(MAX_RULES_PER_TRIGGER + 1):
        if index == MAX_RULES_PER_TRIGGER:
            last_rule_line = len(lines) + 1
        lines += [
            f"  - id: threshold_{index:03d}",
            f"    description: Customers with at least {index} orders.",
            "    trigger: schedule",
            f"    when: {{orders_12m: {{gte: {index}}}}}",
            "    actions:",
            f"      - tag: {{tag: orders_{index:03d}}}",
            "    reentry: {every: 30d}",
        ]
    content = "\n".join(lines).encode() + b"\n"
    return Case(
        "generated:too_many_rules",
        {"many.yaml": content},
        "many.yaml",
        Expectation("too-many-rules", last_rule_line, f"more than {MAX_RULES_PER_TRIGGER}"),
    )


def generated_cases() -> list[Case]:
    """Cases that cannot sensibly be committed: no room for a comment, or too large."""
    padding = b"# " + b"x" * 97 + b"\n"
    huge = b"description: Valid, but too large.\nrules: []\n"
    huge += padding * (MAX_FILE_BYTES // len(padding) + 1)
    assert len(huge) > MAX_FILE_BYTES
    return [
        Case(
            "generated:empty_file", {"empty.yaml": b""}, "empty.yaml", Expectation("empty-file", 1)
        ),
        Case(
            "generated:blank_file",
            {"blank.yaml": b"\n   \n\n"},
            "blank.yaml",
            Expectation("empty-file", 1),
        ),
        Case(
            "generated:huge_file",
            {"huge.yaml": huge},
            "huge.yaml",
            Expectation("file-too-large", 1, "1 MiB"),
        ),
        _too_many_rules(),
    ]


COMMITTED = committed_cases()
CASES = COMMITTED + generated_cases()


def _params(cases: list[Case]) -> list[object]:
    return [pytest.param(case, id=case.name) for case in cases]


def _write(directory: Path, files: dict[str, bytes]) -> None:
    directory.mkdir()
    for name, content in files.items():
        (directory / name).write_bytes(content)


@pytest.mark.parametrize("case", _params(CASES))
def test_broken_rules_are_rejected_with_the_expected_problem(case: Case, tmp_path: Path) -> None:
    """Exactly one error, with the expected code, line, file and message text."""
    directory = tmp_path / "rules"
    _write(directory, case.files)
    result = load_rules(directory)

    assert result.ruleset is None
    errors = [p for p in result.problems if p.severity is Severity.ERROR]
    assert len(errors) == 1, "\n".join(str(p) for p in result.problems)
    (problem,) = errors
    assert (problem.code, problem.line) == (case.expect.code, case.expect.line), str(problem)
    path = directory / case.carrier
    assert problem.path == str(path)
    assert str(problem).startswith(f"{path}:{case.expect.line}:")
    if case.expect.text is not None:
        assert case.expect.text in problem.message


@pytest.fixture(scope="module")
def database_with_good_rules(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, str]:
    """A database whose active revision is a valid ruleset, as in production."""
    folder = tmp_path_factory.mktemp("db")
    engine = make_engine(f"sqlite:///{folder / 'rapport.db'}")
    upgrade_database(engine)
    good, _ = rules_in_force(engine, GOOD_RULES, None, NOW)
    return engine, good.revision


@pytest.mark.parametrize("case", _params(CASES))
def test_after_a_broken_edit_the_previous_revision_stays_in_force(
    case: Case, tmp_path: Path, database_with_good_rules: tuple[Engine, str]
) -> None:
    engine, good_revision = database_with_good_rules
    directory = tmp_path / "rules"
    _write(directory, case.files)
    in_force, problems = rules_in_force(engine, directory, None, NOW)
    assert in_force.revision == good_revision
    assert case.expect.code in {p.code for p in problems}
    assert active_revision(engine).revision == good_revision  # type: ignore[union-attr]


def test_the_corpus_is_large_and_uses_only_documented_codes() -> None:
    """At least 30 cases, every expected code is in CODES, and no stray files."""
    assert len(CASES) >= 30
    assert len(COMMITTED) >= 32
    unknown = {case.name: case.expect.code for case in CASES if case.expect.code not in CODES}
    assert unknown == {}
    strays = [p.name for p in CORPUS.iterdir() if p.is_file() and p.suffix != ".yaml"]
    assert strays == []


def test_python_tags_are_rejected_and_never_executed(tmp_path: Path) -> None:
    """A `!!python/...` tag on a value is a wrong-type error; the code in it never runs."""
    marker = tmp_path / "executed"
    command = json.dumps(f"touch {marker}")
    directory = tmp_path / "rules"
    content = (
        "rules:\n"
        "  - id: weekly_touch\n"
        f"    description: !!python/object/apply:os.system [{command}]\n"
        "    trigger: schedule\n"
        "    actions:\n"
        f"      - tag: {{tag: !!python/object/new:os.system [{command}]}}\n"
        "    reentry: {every: 7d}\n"
    )
    _write(directory, {"tagged.yaml": content.encode()})
    result = load_rules(directory)

    assert not marker.exists()
    assert result.ruleset is None
    assert [(p.line, p.code) for p in result.errors] == [(3, "wrong-type"), (6, "wrong-type")]


SEVERAL_MISTAKES = """\
description: Several mistakes at once.
rules:
  - id: never_fires
    description: High and base at once.
    trigger: schedule
    when:
      - tier: high
      - tier: base
    actions:
      - tag: {tag: impossible}
    reentry: {every: 7d}
  - id: weekly_touch
    description: Weekly touch.
    trigger: schedule
    when:
      - spend_12n: {gte: 1000}
      - tier: gold
    actions:
      - send_mesage: {template: weekly_insight}
  - id: Feedback
    description: Feedback handling.
    trigger: {event: feedback}
    actions:
      - open_task: {kind: feedback, owner_role: business, due_in: 2 days}
    priorty: 5
paramters:
  dormant_days: 120
"""


def test_a_file_with_several_mistakes_reports_all_of_them_sorted_by_line(
    tmp_path: Path,
) -> None:
    """Every mistake is reported, not just the first, in line order.

    The loader finds them in another order: the contradiction on line 8 only after all
    rules are read, the missing reentry of line 12 after that rule's conditions.
    """
    directory = tmp_path / "rules"
    _write(directory, {"several.yaml": SEVERAL_MISTAKES.encode()})
    result = load_rules(directory)

    assert result.ruleset is None
    assert [(p.line, p.code) for p in result.problems] == [
        (8, "contradiction"),
        (12, "reentry-required"),
        (16, "unknown-fact"),
        (17, "bad-choice"),
        (19, "unknown-action"),
        (20, "bad-id"),
        (24, "bad-duration"),
        (25, "unknown-key"),
        (26, "unknown-key"),
    ]
    assert all(p.severity is Severity.ERROR for p in result.problems)
    assert all(p.path == str(directory / "several.yaml") for p in result.problems)
    positions = [(p.line, p.column) for p in result.problems]
    assert positions == sorted(positions)
