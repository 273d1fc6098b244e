"""Message templates: Jinja2 in a sandbox, strict about every variable.

Operations write one YAML file per template and language under `templates/messages/`
(`thank_you_guide.zh-CN.yaml`) with a `subject`, a `text` and optionally an `html`
part. Rendering uses Jinja2's immutable sandbox with `StrictUndefined`, so a template
cannot reach Python internals and a misspelt variable fails at `rapport rules check`,
which renders every template for each sample customer its rule can reach
(`actions.template_samples`), not at send time; what still fails there fails that one
message (`actions.dispatch`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from actions.privacy import error_text
from actions.template_samples import sample_contexts
from engine.model import Position, Rule
from engine.problems import Problem, did_you_mean

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
PARTS = ("subject", "text", "html")

_TEXT = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
_HTML = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


@dataclass(frozen=True)
class RenderedMessage:
    template: str
    locale: str
    subject: str
    text: str
    html: str | None


class TemplateNotFound(LookupError):
    """No file for a template in any language."""


@dataclass(frozen=True)
class TemplateFile:
    name: str
    locale: str
    path: Path
    parts: dict[str, str]


def load_template_files(directory: Path) -> tuple[dict[tuple[str, str], TemplateFile], list[str]]:
    """Every `<name>.<locale>.yaml` under `directory`, and what is wrong with the others."""
    found: dict[tuple[str, str], TemplateFile] = {}
    errors: list[str] = []
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        name, _, locale = path.name.removesuffix(".yaml").partition(".")
        if locale not in LOCALES:
            errors.append(f"{path}: name it <template>.<locale>.yaml, locale one of {LOCALES}")
            continue
        try:
            document = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
        except (YAMLError, UnicodeDecodeError) as error:
            errors.append(f"{path}: not readable YAML ({str(error).splitlines()[0]})")
            continue
        if (
            not isinstance(document, dict)
            or not {"subject", "text"} <= set(document)
            or not set(document) <= set(PARTS)
            or not all(isinstance(v, str) for v in document.values())
        ):
            errors.append(f"{path}: needs text values for subject and text, html optional")
            continue
        found[(name, locale)] = TemplateFile(name, locale, path, document)
    return found, errors


class Templates:
    """The templates of one directory, rendered in the customer's language or the default."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files, self.errors = load_template_files(directory)
        self.names = {name for name, _ in self.files}

    def render(self, name: str, locale: str, context: dict[str, Any]) -> RenderedMessage:
        """Renders `name` in `locale`, else the default language, else any language."""
        for candidate in (locale, DEFAULT_LOCALE, *LOCALES):
            file = self.files.get((name, candidate))
            if file is not None:
                return _render(file, context)
        raise TemplateNotFound(f"no template {name!r} in {self.directory}")


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> Template:
    """Templates compile once per process (compiling is most of a render's cost)."""
    return (_HTML if html else _TEXT).from_string(source)


def _render(file: TemplateFile, context: dict[str, Any]) -> RenderedMessage:
    subject = _compiled(file.parts["subject"], False).render(context).strip()
    text = _compiled(file.parts["text"], False).render(context)
    html = file.parts.get("html")
    return RenderedMessage(
        file.name,
        file.locale,
        " ".join(subject.split()),  # a subject is one line, whatever the template did
        text,
        _compiled(html, True).render(context) if html is not None else None,
    )


def template_checker(directory: Path) -> Callable[[list[Rule]], list[Problem]]:
    """A check for the loader: every message template exists in every language and
    renders for every sample customer its rule can reach (`actions.template_samples`)."""
    templates = Templates(directory)

    def check(rules: list[Rule]) -> list[Problem]:
        problems = [
            Problem(str(directory), 1, 1, "template-error", error) for error in templates.errors
        ]
        for rule in rules:
            for action in rule.actions:
                name = action.params.get("template")
                if name is None:
                    continue
                at = action.position
                missing = [loc for loc in LOCALES if (name, loc) not in templates.files]
                if missing:
                    hint = did_you_mean(name, templates.names)
                    problems.append(
                        Problem(
                            at.path,
                            at.line,
                            at.column,
                            "unknown-template",
                            f"no template {name!r} in {', '.join(missing)} under {directory}{hint}",
                        )
                    )
                for locale in LOCALES:
                    file = templates.files.get((name, locale))
                    if file is not None:
                        problems += render_problems(file, rule, at)
        return problems

    return check


def render_problems(file: TemplateFile, rule: Rule, at: Position) -> list[Problem]:
    """What goes wrong rendering `file` for the sample customers `rule` reaches: each
    distinct error once, with the first customer it happened for."""
    errors: dict[str, str] = {}
    for sample in sample_contexts(rule, LOCALES):
        try:
            _render(file, sample.context)
        except Exception as error:  # whatever a template raises is a problem in its file
            text = str(error) if isinstance(error, TemplateError) else error_text(error)
            errors.setdefault(text, sample.label)
    return [
        Problem(at.path, at.line, at.column, "template-error", f"{file.path}: {text} (for {label})")
        for text, label in errors.items()
    ]


def message_context(
    customer: dict[str, Any],
    facts: dict[str, Any],
    company: dict[str, str],
    unsubscribe_url: str,
    event: dict[str, Any] | None = None,
    suggestions: tuple[str, ...] = (),
    reply_by: datetime | None = None,
) -> dict[str, Any]:
    """The variables of `TEMPLATE_VARIABLES` for one customer (and triggering event)."""
    context: dict[str, Any] = {
        "customer": {
            "id": customer["id"],
            "name": customer.get("name") or "",
            "locale": customer.get("locale") or DEFAULT_LOCALE,
            "segment": facts["segment"],
            "tier": facts["tier"],
            "stage": facts["lifecycle_stage"],
            "account_manager": customer.get("account_manager") or "",
        },
        "facts": facts,
        "suggestions": list(suggestions),
        "company": company,
        "unsubscribe_url": unsubscribe_url,
    }
    if event is not None:
        context["event"] = event
    if reply_by is not None:
        context["reply_by"] = local_moment(reply_by, customer, context["customer"]["locale"])
    return context


MOMENT_PATTERNS = {"en": "EEEE d MMMM, HH:mm", "zh-CN": "M月d日（EEEE）HH:mm"}
"""How a moment reads in each template language (Babel names the weekday and month)."""


def local_moment(moment: datetime, customer: dict[str, Any], locale: str) -> str:
    """`moment` on the customer's clock, in their language: `Monday 30 November, 10:00`."""
    language = locale if locale in MOMENT_PATTERNS else DEFAULT_LOCALE
    zone = ZoneInfo(customer["timezone"])
    return format_datetime(
        moment, MOMENT_PATTERNS[language], tzinfo=zone, locale=language.replace("-", "_")
    )
