"""Message templates: sandboxed, strict, escaped where HTML, in the customer's language."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import TemplateError

from actions.template_samples import sample_context
from actions.templates import Templates, message_context, template_checker
from engine.loader import load_rules

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


# --- `rules check` renders every branch a customer can reach ------------------------

RULE = """\
rules:
  - id: poison_note
    description: Sends the note.
    trigger: {trigger}
    when:
{when}
    actions:
      - send_message: {{template: note, purpose: service}}
    reentry: {reentry}
"""


def check_rule(tmp_path: Path, text: str, trigger: str = "schedule", when: str = "") -> list[str]:
    """The problems `rules check` reports for one rule whose template has `text`."""
    templates, rules = tmp_path / "templates", tmp_path / "rules"
    for locale in ("zh-CN", "en"):
        write(templates, f"note.{locale}.yaml", f'subject: "Note"\ntext: "{text}"\n')
    reentry = "per_event" if trigger != "schedule" else "once"
    when = when or "      - has_online_consent: true"
    write(rules, "note.yaml", RULE.format(trigger=trigger, when=when, reentry=reentry))
    return [
        f"{p.line}: {p.code}: {p.message}"
        for p in load_rules(rules, template_checker(templates)).problems
    ]


@pytest.mark.parametrize(
    ("branch", "trigger"),
    [
        ("customer.tier == 'base'", "schedule"),
        ("customer.tier == 'high'", "schedule"),
        ("customer.segment == 'enterprise'", "schedule"),
        ("customer.locale == 'en'", "schedule"),
        ("customer.stage == 'dormant'", "schedule"),
        ("not customer.name", "schedule"),
        ("not customer.account_manager", "schedule"),
        ("not suggestions", "{event: purchase}"),
        ("facts.last_purchase_on is none", "schedule"),
        ("event.level == 'major'", "{event: feedback}"),
        ("event.channel == 'phone'", "{event: contact}"),
    ],
)
def test_rules_check_renders_every_branch_a_customer_can_reach(
    tmp_path: Path, branch: str, trigger: str
) -> None:
    """The issue's template: a misspelt variable inside a branch only some customers
    take passes a check that renders one sample customer."""
    problems = check_rule(
        tmp_path, f"{{% if {branch} %}}{{{{ customer.nme }}}}{{% endif %}}ok", trigger
    )
    assert problems and all("template-error" in p and "nme" in p for p in problems), problems
    assert all(p.startswith("2: ") for p in problems)  # the template's `text:` line


def test_a_branch_the_rule_cannot_reach_is_not_an_error(tmp_path: Path) -> None:
    """A rule for high-tier customers never renders the base-tier branch."""
    text = "{% if customer.tier == 'base' %}{{ customer.nme }}{% endif %}ok"
    assert check_rule(tmp_path, text, when="      - tier: high") == []
    assert check_rule(tmp_path, text, when="      - tier: {in: [mid, base]}") != []


def test_a_render_error_that_is_not_a_template_error_is_a_problem(tmp_path: Path) -> None:
    """A nullable fact used in arithmetic fails for customers without it: reported,
    never a crash of `rules check`."""
    problems = check_rule(tmp_path, "{{ facts.days_since_last_purchase + 1 }}")
    assert problems and "template-error" in problems[0] and "TypeError" in problems[0]
