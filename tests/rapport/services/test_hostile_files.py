"""Hostile rule and template files become `file:line` problems, and the last good
revision stays in force.

The corpus is `tests/rules_hostile/`: `rules/*.yaml` are rule files, `templates/*.en.yaml`
message templates (each used by one generated rule, beside a harmless zh-CN sibling).
Each file starts with `# expect: CODE LINE [TEXT]`, as in `tests/rules_invalid/`: the
one error `rules_in_force` must report, on that line of that file. Cases too big to
commit are generated below.

Every case runs in a forked child with an address-space cap, so a regression that hangs
or eats memory fails this test (after `HANG_GUARD` seconds) instead of stalling the
suite. The guard is not a timing assertion: `pytest --durations` measures the cases.
"""

from __future__ import annotations

import multiprocessing
import resource
import shutil
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.problems import CODES, Severity
from engine.yamlsource import MAX_FILE_BYTES
from rapport.services.rules import rules_in_force
from storage.db import make_engine
from storage.migrate import upgrade_database
from storage.revisions import active_revision
from tests.engine.test_rules_invalid import Expectation, expectation
from tests.paths import ROOT, RULESETS

CORPUS = ROOT / "tests" / "rules_hostile"
GOOD_RULES = RULESETS / "operators"
NOW = datetime(2026, 7, 1, tzinfo=UTC)
HANG_GUARD = 60.0  # seconds before a case counts as hung; they take well under one
MEMORY_CAP = 3 * 1024**3  # bytes of address space a case's process may map
HARMLESS = b"subject: \xe4\xbd\xa0\xe5\xa5\xbd\ntext: \xe4\xbd\xa0\xe5\xa5\xbd\n"


@dataclass(frozen=True)
class Case:
    """A rules folder and a templates folder (name -> bytes); `carrier` holds the problem."""

    name: str
    rules: dict[str, bytes]
    templates: dict[str, bytes]
    carrier: str  # "rules/<file>" or "templates/<file>"
    expect: Expectation


def _uses(template: str) -> bytes:
    return (
        "rules:\n  - id: sends_hostile\n    description: Sends the template under test.\n"
        f"    trigger: schedule\n    actions:\n      - send_message: {{template: {template}}}\n"
        "    reentry: once\n"
    ).encode()


def _rule_case(name: str, content: bytes, expect: Expectation) -> Case:
    return Case(name, {name: content}, {}, f"rules/{name}", expect)


def _template_case(name: str, content: bytes, expect: Expectation) -> Case:
    template = name.removesuffix(".en.yaml")
    files = {name: content, f"{template}.zh-CN.yaml": HARMLESS}
    return Case(name, {"uses.yaml": _uses(template)}, files, f"templates/{name}", expect)


def committed_cases() -> list[Case]:
    cases = []
    for path in sorted((CORPUS / "rules").glob("*.yaml")):
        content = path.read_bytes()
        expect = expectation(content)
        assert expect is not None, f"{path} lacks `# expect: CODE LINE`"
        cases.append(_rule_case(path.name, content, expect))
    for path in sorted((CORPUS / "templates").glob("*.en.yaml")):
        content = path.read_bytes()
        expect = expectation(content)
        assert expect is not None, f"{path} lacks `# expect: CODE LINE`"
        cases.append(_template_case(path.name, content, expect))
    return cases


def generated_cases() -> list[Case]:
    """Files too large or too odd to commit."""
    deep = 20_000
    wide = ", ".join(["high"] * 150_000)
    huge_template = b"subject: Hi\ntext: |\n" + b"  " + b"x" * (MAX_FILE_BYTES + 10) + b"\n"
    return [
        _rule_case(
            "20000_brackets.yaml",
            b"rules: " + b"[" * deep + b"]" * deep + b"\n",
            Expectation("yaml-too-deep", 1),
        ),
        _rule_case(
            "20000_braces.yaml",
            b"description: fine\nrules: " + b"{a: " * deep + b"1" + b"}" * deep + b"\n",
            Expectation("yaml-too-deep", 2),
        ),
        _rule_case(
            "20000_unclosed_brackets.yaml",
            b"rules:\n  - " + b"[" * deep + b"\n",
            Expectation("yaml-too-deep", 2),
        ),
        _rule_case(
            "150000_values.yaml",
            (
                "rules:\n  - id: long_list\n    description: A list of 150,000 values.\n"
                f"    trigger: schedule\n    when: {{tier: {{in: [{wide}]}}}}\n"
                "    actions: [{tag: {tag: listed}}]\n    reentry: once\n"
            ).encode(),
            Expectation("yaml-too-many-values", 5),
        ),
        _template_case(
            "over_1_mib.en.yaml", huge_template, Expectation("file-too-large", 1, "1 MiB")
        ),
    ]


CASES = committed_cases() + generated_cases()


def _write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)


def _load_in_child(database: str, rules: Path, templates: Path, pipe: Connection) -> None:
    """What the child process runs: the rules in force, reported back as plain tuples."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    try:
        engine = make_engine(database)
        in_force, problems = rules_in_force(engine, rules, templates, NOW)
        active = active_revision(engine)
        pipe.send(
            (
                in_force.revision,
                active.revision if active else None,
                [(p.path, p.line, p.code, p.message, p.severity.value) for p in problems],
            )
        )
    except BaseException:  # the failure itself is what the parent reports
        pipe.send(traceback.format_exc(limit=-6))


def run_bounded(database: str, rules: Path, templates: Path) -> object:
    """`_load_in_child` in a forked process; fails the test if it does not finish."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_load_in_child, args=(database, rules, templates, send))
    child.start()
    send.close()
    ready = receive.poll(HANG_GUARD)
    if not ready:
        child.kill()
        child.join()
        pytest.fail(f"still running after {HANG_GUARD:.0f} s: the case hangs")
    try:
        answer = receive.recv()
    except EOFError:
        answer = f"the process died (exit code {child.join() or child.exitcode})"
    child.join()
    return answer


@pytest.fixture(scope="module")
def good_database(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A database whose active revision is a valid ruleset, as in production."""
    path = tmp_path_factory.mktemp("db") / "rapport.db"
    engine: Engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    good, _ = rules_in_force(engine, GOOD_RULES, None, NOW)
    engine.dispose()
    return path, good.revision


@pytest.fixture()
def database(good_database: tuple[Path, str], tmp_path: Path) -> tuple[str, str]:
    """A copy of it for one case, so a case that replaced the revision spoils no other."""
    path, revision = good_database
    shutil.copy(path, tmp_path / "rapport.db")
    return f"sqlite:///{tmp_path / 'rapport.db'}", revision


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_a_hostile_file_is_a_problem_at_its_line_and_the_good_revision_stays(
    case: Case, tmp_path: Path, database: tuple[str, str]
) -> None:
    url, good_revision = database
    _write(tmp_path / "rules", case.rules)
    _write(tmp_path / "templates", case.templates)

    answer = run_bounded(url, tmp_path / "rules", tmp_path / "templates")

    assert isinstance(answer, tuple), answer
    in_force, active, problems = answer
    assert (in_force, active) == (good_revision, good_revision)
    errors = [p for p in problems if p[4] == Severity.ERROR.value]
    shown = "\n".join(f"{p[0]}:{p[1]}: {p[2]}: {p[3]}" for p in problems)
    assert len(errors) == 1, shown
    ((path, line, code, message, _),) = errors
    assert (path, line, code) == (str(tmp_path / case.carrier), case.expect.line, case.expect.code)
    if case.expect.text is not None:
        assert case.expect.text in message, message


def test_the_corpus_is_large_and_uses_only_documented_codes() -> None:
    assert len(CASES) >= 30
    assert {case.expect.code for case in CASES} <= set(CODES)
    strays = [p.name for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".yaml"]
    assert strays == []
