"""Bounds on rendering a message template: work, output, the size of any value, range().

Operations write the templates, so a template is input like any other: nested loops,
`range(10**9)` or `"x" * 2000000000` must fail that one message (and `rules check`)
with a line, not hang or exhaust the dispatcher. Jinja's sandbox bounds none of this
(its `range` stops at 100,000 with an OverflowError). The bounds, all raising
`TemplateLimit`:

- work: a render stops past `MAX_RENDER_SECONDS` of its thread's CPU time, checked at
  every iteration of every `{% for %}` (a compiler pass wraps each loop's iterable),
  every call (macros, `caller()`, recursive `loop()`), operator and filter: all a
  template can repeat. Jinja has no hook for this, and a watchdog thread cannot stop
  another thread's loop. A `sys.settrace` deadline stopped everything too, but made
  the shipped templates render 8 times slower (50 → 450 µs a file, measured), because
  CPython stops specialising bytecode while tracing; these checks cost 66 → 77 µs a
  file (median of the shipped templates), about 1 % of a message's dispatch.
- values: every operator, call, filter and `~` result is at most `MAX_VALUE`
  characters or items, so no value grows past it by doubling; operations whose result
  size is set by a number (repeat, power, `%`/format widths, center, ljust, rjust,
  zfill, indent, expandtabs, replace, join) are refused before they allocate, because
  they run in C where the tracer cannot stop them.
- output: a render is streamed and stops past `MAX_OUTPUT` characters.
- range(): at most `MAX_RANGE` numbers.
- RecursionError, MemoryError, OverflowError and Python's refusal to compile deeply
  nested blocks become a `TemplateLimit` too.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from functools import wraps
from types import TracebackType
from typing import Any

from jinja2 import Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import generate_lorem_ipsum

from engine.problems import EXHAUSTED, ran_out_of

MAX_RENDER_SECONDS = 0.5  # CPU time of one part; the shipped templates take 0.1 ms
MAX_OUTPUT = 256 * 1024  # characters of one part
MAX_VALUE = MAX_OUTPUT  # characters or items of any value a template makes
MAX_RANGE = 10_000
MAX_POWER_BITS = 4_096
_NUMBERS = re.compile(r"\d{1,9}")  # a longer run is two numbers, each over the bounds
_DEADLINE: ContextVar[float] = ContextVar("template_deadline", default=math.inf)


class TemplateLimit(SecurityError):
    """A template went past one of the bounds of rendering; `lineno` is the template
    line when the traceback cannot tell it (output past the bound)."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno


def _tick() -> None:
    """Stops the render in progress once its CPU time is spent."""
    if time.thread_time() > _DEADLINE.get():
        raise TemplateLimit(f"rendering took more than {MAX_RENDER_SECONDS} seconds of work")


def _iterate(items: Iterable[Any]) -> Iterator[Any]:
    """What every `{% for %}` loops over: the items, checking the clock between them."""
    for item in items:
        _tick()
        yield item


def _refuse_if(size: float, what: str) -> None:
    if size > MAX_VALUE:
        raise TemplateLimit(
            f"{what} would make {size:,.0f} characters or items; at most {MAX_VALUE:,}"
        )


def _sized(value: Any) -> Any:
    """`value`, unless it is text or a collection past `MAX_VALUE`."""
    if isinstance(value, str | bytes | list | tuple | dict | set) and len(value) > MAX_VALUE:
        raise TemplateLimit(f"a value of {len(value):,} characters or items; at most {MAX_VALUE:,}")
    return value


def _format_size(template: str, args: list[Any]) -> float:
    """An upper bound on `template % args` and `template.format(*args)`: every field
    as long as the longest argument or the widest width written or passed."""
    widths = [int(n) for n in _NUMBERS.findall(template)]
    if "*" in template:
        widths += [abs(a) for a in args if isinstance(a, int)]
    fields = template.count("%") + template.count("{")
    longest = max((len(str(a)) for a in args), default=0)
    return len(template) + fields * (longest + max(widths, default=0))


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, str | list | tuple) and isinstance(times, int):
                _refuse_if(len(sequence) * times, "repeating a value")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        if right * math.log2(abs(left) or 1) > MAX_POWER_BITS:
            raise TemplateLimit(f"a power past 2^{MAX_POWER_BITS:,}")
    elif operator == "%" and isinstance(left, str):
        values = right.values() if isinstance(right, dict) else right
        args = list(values) if isinstance(right, tuple | dict) else [right]
        _refuse_if(_format_size(left, args), "formatting with %")


def _replace_size(text: str, old: Any, new: Any, count: Any = -1) -> float:
    found = len(text) + 1 if old == "" else text.count(str(old))
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * len(str(new))


def _join_size(items: list[Any], separator: Any) -> float:
    return sum(len(str(item)) for item in items) + len(str(separator)) * max(len(items) - 1, 0)


def _check_text_method(name: str, text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The str methods whose result size is set by an argument."""
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        _refuse_if(args[0], f"str.{name}")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            _refuse_if(len(text) + text.count("\t") * size, "str.expandtabs")
    elif name == "replace" and len(args) >= 2:
        _refuse_if(_replace_size(text, *args[:3]), "str.replace")
    elif name in ("format", "format_map"):
        values = [*args, *kwargs.values()]
        if name == "format_map" and args and isinstance(args[0], dict):
            values = list(args[0].values())
        _refuse_if(_format_size(text, values), f"str.{name}")


def _check_filter(
    name: str, passed: bool, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """The filters whose result size is set by an argument; returns the arguments
    (`join` reads its items once, here). `passed`: the first argument is Jinja's
    context or environment, not the value."""
    values = list(args[1:] if passed else args)
    if not values:
        return args
    text = values[0]
    rest = values[1:]
    if name == "center":
        width = rest[0] if rest else kwargs.get("width", 80)
        if isinstance(width, int):
            _refuse_if(width, "center")
    elif name == "indent" and isinstance(text, str):
        width = rest[0] if rest else kwargs.get("width", 4)
        step = width if isinstance(width, int) else len(str(width))
        _refuse_if(len(text) + (text.count("\n") + 1) * step, "indent")
    elif name == "format" and isinstance(text, str):
        _refuse_if(_format_size(text, [*rest, *kwargs.values()]), "format")
    elif name == "replace" and isinstance(text, str) and len(rest) >= 2:
        _refuse_if(_replace_size(text, *rest[:3]), "replace")
    elif name == "join" and not isinstance(text, str):
        items = list(text)
        separator = rest[0] if rest else kwargs.get("d", "")
        _refuse_if(_join_size(items, separator), "join")
        return tuple(items if a is text else a for a in args)
    return args


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    passed = getattr(function, "jinja_pass_arg", None) is not None

    @wraps(function)  # keeps `jinja_pass_arg`, how Jinja knows what to pass first
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        return _sized(function(*_check_filter(name, passed, args, kwargs), **kwargs))

    return bounded


def bounded_range(*args: int) -> range:
    numbers = range(*args)
    try:
        count = len(numbers)
    except OverflowError:  # more than sys.maxsize numbers
        count = sys.maxsize
    if count > MAX_RANGE:
        raise TemplateLimit(f"range() of {count:,} numbers; at most {MAX_RANGE:,}")
    return numbers


class _Generator(CodeGenerator):
    """Compiles every loop to iterate through `_iterate`, and `a ~ b` so its result is
    measured like every other operation's."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            bounded = nodes.EnvironmentAttribute("iterate", lineno=loop.iter.lineno)
            loop.iter = nodes.Call(bounded, [loop.iter], [], None, None, lineno=loop.lineno)
        super().visit_Template(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the bounds of this module."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = bounded_range
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.sized = _sized
        self.iterate = _iterate

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        return _sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _tick()
        if __obj is generate_lorem_ipsum:
            count, longest = (list(args) + [5, True, 20, 100])[0], kwargs.get("max", 100)
            _refuse_if(count * longest * 12, "lipsum")
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str) and method.__name__ == "join" and args:
            args = (list(args[0]), *args[1:])
            _refuse_if(_join_size(args[0], owner), "str.join")
        elif isinstance(owner, str):
            _check_text_method(method.__name__, owner, args, kwargs)
        return _sized(super().call(__context, __obj, *args, **kwargs))


def compile_bounded(environment: BoundedEnvironment, source: str) -> Template:
    """`source` compiled; a parser or Python compiler out of depth is a `TemplateLimit`."""
    try:
        return environment.from_string(source)
    except TemplateError:
        raise
    except (*EXHAUSTED, SyntaxError) as error:
        raise TemplateLimit(f"nested too deeply to compile ({type(error).__name__})") from None


def render_bounded(template: Template, context: dict[str, Any]) -> str:
    """`template` rendered within the bounds; `TemplateLimit` past any of them."""
    chunks: list[str] = []
    total = 0
    deadline = _DEADLINE.set(time.thread_time() + MAX_RENDER_SECONDS)
    try:
        stream = template.generate(context)
        for chunk in stream:
            total += len(chunk)
            if total > MAX_OUTPUT:
                line = _suspended_line(template, stream)
                raise TemplateLimit(f"output past {MAX_OUTPUT:,} characters", line)
            chunks.append(chunk)
    except EXHAUSTED as error:
        limit = TemplateLimit(f"rendering ran out of {ran_out_of(error)}")
        raise limit.with_traceback(error.__traceback__) from None
    finally:
        _DEADLINE.reset(deadline)
    return "".join(chunks)


def _suspended_line(template: Template, stream: Iterator[str]) -> int | None:
    """The template line whose output `stream` has just yielded."""
    inner: Any = stream
    while getattr(inner, "gi_yieldfrom", None) is not None:
        inner = inner.gi_yieldfrom
    frame = getattr(inner, "gi_frame", None)
    return template.get_corresponding_lineno(frame.f_lineno) if frame is not None else None


def template_line(error: BaseException) -> int | None:
    """The template line an error was raised on, if it came from template code."""
    if isinstance(error, TemplateSyntaxError | TemplateLimit) and error.lineno is not None:
        return error.lineno
    line = None
    trace: TracebackType | None = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line
