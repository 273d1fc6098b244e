"""Message templates: Jinja2 in a sandbox, strict about every variable.

Operations write one YAML file per template and language under `templates/messages/`
(`thank_you_guide.zh-CN.yaml`) with a `subject`, a `text` and optionally an `html`
part. Rendering uses Jinja2's immutable sandbox with `StrictUndefined`, so a template
cannot reach Python internals and a misspelt variable fails at `rapport rules check`,
which renders every template for each sample customer its rule can reach
(`actions.template_samples`), not at send time; what still fails there fails that one
message (`actions.dispatch`). Files are read with the bounds of rule files and rendered
within those of `actions/template_limits.py`; a render error names the template file
and line.
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
from jinja2 import StrictUndefined, Template, TemplateError, meta, nodes
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from actions.privacy import error_text
from actions.template_limits import (
    BoundedEnvironment,
    TemplateLimit,
    compile_bounded,
    render_bounded,
    template_line,
)
from actions.template_samples import sample_contexts
from engine.model import Rule
from engine.problems import Problem, did_you_mean
from engine.yamlsource import Source, parse

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
PARTS = ("subject", "text", "html")

_TEXT = BoundedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
_HTML = BoundedEnvironment(undefined=StrictUndefined, autoescape=True)


@dataclass(frozen=True)
class RenderedMessage:
    template: str
    locale: str
    subject: str
    text: str
    html: str | None


class TemplateNotFound(LookupError):
    """No file for a template in any language."""


class TemplateRenderError(TemplateError):
    """A part of a template file that did not compile or render, with its file line;
    `cause` is Jinja's error (a `TemplateLimit` when a bound of rendering was hit)."""

    def __init__(self, path: Path, line: int, part: str, cause: TemplateError) -> None:
        super().__init__(f"{path}:{line}: {part}: {cause.message or type(cause).__name__}")
        self.path, self.line, self.part, self.cause = path, line, part, cause


@dataclass(frozen=True)
class TemplateFile:
    name: str
    locale: str
    path: Path
    parts: dict[str, str]
    lines: dict[str, int]  # the file line of each part's first template line


def load_template_files(
    directory: Path,
) -> tuple[dict[tuple[str, str], TemplateFile], list[Problem]]:
    """Every `<name>.<locale>.yaml` under `directory`, and what is wrong with the others."""
    found: dict[tuple[str, str], TemplateFile] = {}
    errors: list[Problem] = []
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        name, _, locale = path.name.removesuffix(".yaml").partition(".")
        if locale not in LOCALES:
            message = f"name it <template>.<locale>.yaml, locale one of {LOCALES}"
            errors.append(Problem(str(path), 1, 1, "template-error", message))
            continue
        source = Source(str(path))
        document = parse(source, path.read_bytes())
        errors.extend(source.problems)
        if document is None:
            continue
        if (
            not isinstance(document, CommentedMap)
            or not {"subject", "text"} <= set(document)
            or not set(document) <= set(PARTS)
            or not all(isinstance(v, str) for v in document.values())
        ):
            message = "needs text values for subject and text, html optional"
            errors.append(Problem(str(path), *Source.of(document), "template-error", message))
            continue
        parts = {str(key): str(value) for key, value in document.items()}
        lines = {key: _first_line(document, key) for key in parts}
        found[(name, locale)] = TemplateFile(name, locale, path, parts, lines)
    return found, errors


def _first_line(document: CommentedMap, key: str) -> int:
    """The file line of a part's first template line: a block scalar starts below its key."""
    line, _ = Source.value(document, key)
    block = isinstance(document[key], LiteralScalarString | FoldedScalarString)
    return line + 1 if block else line


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

    def event_fields(self, name: str) -> tuple[str, ...] | None:
        """The `event.<field>`s the files of template `name` read, or None when none of
        them uses the triggering event: what `rapport preview` must ask `--event` for."""
        used: set[str] = set()
        uses_event = False
        for (file_name, _), file in self.files.items():
            if file_name != name:
                continue
            for source in file.parts.values():
                tree = _TEXT.parse(source)
                uses_event |= "event" in meta.find_undeclared_variables(tree)
                used |= {
                    node.attr
                    for node in tree.find_all(nodes.Getattr)
                    if isinstance(node.node, nodes.Name) and node.node.name == "event"
                }
        return tuple(sorted(used)) if uses_event else None


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> Template:
    """Templates compile once per process (compiling is most of a render's cost)."""
    return compile_bounded(_HTML if html else _TEXT, source)


def _render_part(file: TemplateFile, part: str, context: dict[str, Any]) -> str:
    """One part rendered; any error becomes a `TemplateRenderError` at its file line."""
    try:
        return render_bounded(_compiled(file.parts[part], part == "html"), context)
    except TemplateError as error:
        line = file.lines[part] + (template_line(error) or 1) - 1
        raise TemplateRenderError(file.path, line, part, error) from error


def _render(file: TemplateFile, context: dict[str, Any]) -> RenderedMessage:
    subject = _render_part(file, "subject", context).strip()
    return RenderedMessage(
        file.name,
        file.locale,
        " ".join(subject.split()),  # a subject is one line, whatever the template did
        _render_part(file, "text", context),
        _render_part(file, "html", context) if "html" in file.parts else None,
    )


def template_checker(directory: Path) -> Callable[[list[Rule]], list[Problem]]:
    """A check for the loader: every message template exists in every language and
    renders for every sample customer its rule can reach (`actions.template_samples`)."""
    templates = Templates(directory)

    def check(rules: list[Rule]) -> list[Problem]:
        problems = list(templates.errors)
        broken = {Path(problem.path).name for problem in templates.errors}  # said already
        for rule in rules:
            for action in rule.actions:
                name = action.params.get("template")
                if name is None:
                    continue
                at = action.position
                missing = [
                    loc
                    for loc in LOCALES
                    if (name, loc) not in templates.files and f"{name}.{loc}.yaml" not in broken
                ]
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
                        problems += render_problems(file, rule)
        return problems

    return check


def render_problems(file: TemplateFile, rule: Rule) -> list[Problem]:
    """What goes wrong rendering `file` for the sample customers `rule` reaches: each
    distinct error once, at the template file's line, with the first customer it
    happened for. A limit hit ends the check of this file: every other sample would
    hit it too, each at the cost of the time limit."""
    found: dict[tuple[int, str, str], str] = {}
    for sample in sample_contexts(rule, LOCALES):
        try:
            _render(file, sample.context)
        except TemplateRenderError as error:
            limit = isinstance(error.cause, TemplateLimit)
            key = (error.line, "template-limit" if limit else "template-error")
            message = error.cause.message or type(error.cause).__name__
            found.setdefault((*key, f"{error.part}: {message}"), sample.label)
            if limit:
                break
        except Exception as error:  # whatever else a template raises is a problem in its file
            found.setdefault((1, "template-error", error_text(error)), sample.label)
    return [
        Problem(str(file.path), line, 1, code, f"{text} (sent by rule {rule.id!r}, for {label})")
        for (line, code, text), label in found.items()
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
