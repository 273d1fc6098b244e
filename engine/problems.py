"""Problems found in rule files, as `path:line:col: code: message`.

Codes are stable and grouped by stage (parse, validate, check); each is documented in
`rules/README.md`, generated from `CODES`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


CODES: dict[str, tuple[str, str]] = {
    # parse: the file cannot be read as YAML
    "file-too-large": ("parse", "A rule file is larger than 1 MiB."),
    "not-utf8": ("parse", "The file is not UTF-8 text."),
    "yaml-syntax": ("parse", "The file is not valid YAML."),
    "empty-file": ("parse", "The file holds nothing."),
    "yaml-too-deep": ("parse", "Values nested more than 32 levels deep (aliases included)."),
    "yaml-too-many-values": (
        "parse",
        "More than 20,000 values, each alias counting as the values it repeats "
        "(a “billion laughs” file), or an alias inside the value it names.",
    ),
    "number-too-large": (
        "parse",
        "An integer beyond ±2^53, a decimal below 0.0001 or from 10^16 up, or a window of "
        "days beyond 36,500: more than the engine holds.",
    ),
    "resource-limit": (
        "parse",
        "Reading the file ran out of stack, memory or number range; simplify it.",
    ),
    # validate: the YAML does not fit the rule language
    "wrong-type": ("validate", "A value has the wrong type (e.g. text where a number belongs)."),
    "unknown-key": ("validate", "A key the rule language does not have."),
    "missing-key": ("validate", "A required key is absent."),
    "bad-id": ("validate", "A rule id is not snake_case (a-z, 0-9, _; 3-64 characters)."),
    "duplicate-id": ("validate", "Two rules share an id, in one file or across files."),
    "unknown-fact": ("validate", "A condition names a fact that does not exist."),
    "unknown-event": ("validate", "A trigger names an event type that does not exist."),
    "unknown-field": ("validate", "A condition names an event field the trigger does not have."),
    "unknown-operator": ("validate", "A condition uses an operator that does not exist."),
    "operator-type": ("validate", "An operator that does not apply to the fact's type."),
    "bad-choice": ("validate", "A value outside the fact's or parameter's allowed values."),
    "bad-duration": ("validate", "A duration not written like 30m, 1h, 24h, 7d or 2w."),
    "unknown-action": ("validate", "An action that does not exist."),
    "unknown-param": ("validate", "An action parameter that does not exist."),
    "missing-param": ("validate", "A required action parameter is absent."),
    "reentry-required": ("validate", "A scheduled rule says how often it may fire again."),
    "duplicate-section": (
        "validate",
        "parameters, holidays, affinity, policy or measures given in two files.",
    ),
    "unknown-task-kind": ("check", "A cost given for a task kind no rule opens."),
    "unknown-product": (
        "check",
        "`product_purchases` names a product the affinity table (every product sold) lacks.",
    ),
    "unknown-template": ("validate", "A message template missing in a language."),
    "template-error": (
        "validate",
        "A template that does not render: syntax, an undefined variable, a sandbox refusal.",
    ),
    "template-limit": (
        "validate",
        "A template went past a bound of rendering: 0.5 s of CPU time, 256 KiB of output or of "
        "any value it makes, range() of 10,000, nesting the Python stack cannot hold.",
    ),
    "too-many-rules": ("validate", "More than 60 enabled rules share one trigger."),
    # check: the rule is valid but cannot do what it says
    "contradiction": ("check", "Conditions that can never all be true: the rule never fires."),
    "duplicate-rule": ("check", "Two rules with the same trigger, conditions and actions."),
    "rule-too-complex": ("check", "More conditions than the engine holds in one rule: split it."),
}


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    column: int
    code: str
    message: str
    severity: Severity = Severity.ERROR

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"undocumented problem code {self.code!r}")

    def __str__(self) -> str:
        suffix = " (warning)" if self.severity is Severity.WARNING else ""
        return f"{self.path}:{self.line}:{self.column}: {self.code}: {self.message}{suffix}"


EXHAUSTED = (RecursionError, MemoryError, OverflowError)
"""What Python raises when a file asks for more than it has: a `resource-limit` or
`template-limit` problem, never a crash."""


def ran_out_of(error: BaseException) -> str:
    """What an `EXHAUSTED` error ran out of, in words: `stack (RecursionError)`."""
    names: dict[type[BaseException], str] = {RecursionError: "stack", MemoryError: "memory"}
    return f"{names.get(type(error), 'number range')} ({type(error).__name__})"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'tier'?)` for a near miss, else an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
