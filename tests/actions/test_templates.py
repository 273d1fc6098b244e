"""Message templates: sandboxed, strict, escaped where HTML, in the customer's language."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import TemplateError

from actions.templates import Templates, message_context, sample_context

FACTS = sample_context(None)["facts"]


def write(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(body, encoding="utf-8")


def context(name: str = "Emma", locale: str = "en") -> dict:
    customer = {"id": "C1", "name": name, "locale": locale}
    return message_context(
        customer, FACTS, {"name": "Acme", "service_phone": "1", "website": "w"}, "https://u/1"
    )


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ customer.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_templates_cannot_reach_python_internals(tmp_path: Path, expression: str) -> None:
    write(tmp_path, "evil.en.yaml", f'subject: "x"\ntext: "{expression}"\n')
    with pytest.raises(TemplateError) as raised:
        Templates(tmp_path).render("evil", "en", context())
    assert "unsafe" in str(raised.value) or "undefined" in str(raised.value)


def test_an_undefined_variable_is_an_error_not_an_empty_string(tmp_path: Path) -> None:
    write(tmp_path, "t.en.yaml", 'subject: "Hi {{ customer.nmae }}"\ntext: "x"\n')
    with pytest.raises(TemplateError, match="nmae"):
        Templates(tmp_path).render("t", "en", context())


def test_html_is_escaped_and_text_is_not(tmp_path: Path) -> None:
    write(
        tmp_path,
        "t.en.yaml",
        'subject: "Hi {{ customer.name }}"\ntext: "Hi {{ customer.name }}"\n'
        'html: "<p>Hi {{ customer.name }}</p>"\n',
    )
    message = Templates(tmp_path).render("t", "en", context(name="<b>Bo</b>"))
    assert message.text == "Hi <b>Bo</b>"
    assert message.html == "<p>Hi &lt;b&gt;Bo&lt;/b&gt;</p>"


def test_the_customers_language_then_the_default(tmp_path: Path) -> None:
    write(tmp_path, "t.zh-CN.yaml", 'subject: "您好"\ntext: "中文"\n')
    write(tmp_path, "t.en.yaml", 'subject: "Hello"\ntext: "English"\n')
    write(tmp_path, "only.zh-CN.yaml", 'subject: "您好"\ntext: "中文"\n')
    templates = Templates(tmp_path)
    assert templates.render("t", "en", context()).text == "English"
    assert templates.render("t", "zh-CN", context()).text == "中文"
    fallback = templates.render("only", "en", context())
    assert (fallback.locale, fallback.text) == ("zh-CN", "中文")


def test_a_subject_is_one_line(tmp_path: Path) -> None:
    write(tmp_path, "t.en.yaml", 'subject: "Hi\\n  {{ customer.name }}  "\ntext: "x"\n')
    assert Templates(tmp_path).render("t", "en", context()).subject == "Hi Emma"


def test_badly_named_or_shaped_files_are_reported(tmp_path: Path) -> None:
    write(tmp_path, "t.fr.yaml", 'subject: "x"\ntext: "x"\n')
    write(tmp_path, "u.en.yaml", 'subject: "x"\n')
    templates = Templates(tmp_path)
    assert len(templates.errors) == 2 and templates.names == set()


def test_a_render_error_names_the_template_file_and_line(tmp_path: Path) -> None:
    """What dispatch records for a message: a TemplateError, at the file's own line."""
    write(tmp_path, "loops.en.yaml", "subject: Hi\ntext: |\n  Hello\n  {{ range(10**9)|length }}\n")
    with pytest.raises(TemplateError) as raised:
        Templates(tmp_path).render("loops", "en", context())
    assert str(raised.value).startswith(f"{tmp_path / 'loops.en.yaml'}:4: text: range()")


def test_bounded_templates_still_render_loops_filters_and_escaping(tmp_path: Path) -> None:
    body = (
        "{% for p in suggestions %}{{ loop.index }}. {{ p|upper|center(12) }}{% endfor %}"
        "{{ ['a', 'b']|join(', ') }} {{ '%05d'|format(42) }} {{ 'x' * 3 }} {{ 2 ** 10 }}"
    )
    write(tmp_path, "fine.en.yaml", f'subject: "<b>"\ntext: "{body}"\nhtml: "{body}<b>"\n')
    data = {**context(), "suggestions": ["grinder", "kettle"]}
    rendered = Templates(tmp_path).render("fine", "en", data)
    assert rendered.text == "1.   GRINDER   2.    KETTLE   a, b 00042 xxx 1024"
    assert rendered.html is not None and rendered.html.endswith("1024<b>")
