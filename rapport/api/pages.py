"""The pages the API shows people rather than programs: the unsubscribe link's.

A customer opens the link from a message, so the page speaks the customer's language
(the locales message templates are written in) and names the one channel it stops;
other channels keep their consent. A link that is not valid, or no longer names a
customer, is answered in both languages: nothing trustworthy says whose it is.

The pages link to nothing and tell the browser to send no Referer, so the token in
the address goes nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment

from actions.templates import DEFAULT_LOCALE, LOCALES


@dataclass(frozen=True)
class _Texts:
    title: str
    ask: str  # {company}, {channel}
    button: str
    done_title: str
    done: str  # {company}, {channel}
    others: str
    invalid: str
    unknown: str
    channels: dict[str, str]


TEXTS: dict[str, _Texts] = {
    "zh-CN": _Texts(
        title="退订",
        ask="不再通过{channel}接收{company}的消息？",
        button="退订",
        done_title="已退订",
        done="{company}将不再通过{channel}向您发送消息。",
        others="其他渠道不受影响。",
        invalid="此退订链接无效。",
        unknown="此退订链接对应的客户已不存在。",
        channels={"email": "电子邮件", "sms": "短信", "wechat": "微信", "app": "应用推送"},
    ),
    "en": _Texts(
        title="Unsubscribe",
        ask="Stop receiving messages from {company} by {channel}?",
        button="Unsubscribe",
        done_title="You are unsubscribed",
        done="{company} will no longer send you messages by {channel}.",
        others="Other channels are not affected.",
        invalid="This unsubscribe link is not valid.",
        unknown="This unsubscribe link no longer names a customer.",
        channels={"email": "email", "sms": "SMS", "wechat": "WeChat", "app": "app notification"},
    ),
}

_PAGE = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>{{ title }}</title></head>
<body>
<h1>{{ title }}</h1>
{% for lang, text in paragraphs %}<p lang="{{ lang }}">{{ text }}</p>
{% endfor %}{% if button %}<form method="post">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">{{ button }}</button>
</form>
{% endif %}</body></html>
"""
)


def page_locale(locale: str | None) -> str:
    """The customer's locale if pages speak it, else the default one (as messages do)."""
    return locale if locale in TEXTS else DEFAULT_LOCALE


def confirm_page(locale: str, channel: str, company: str) -> str:
    """The link's page: what it stops, and one button (it POSTs the one-click form)."""
    texts = TEXTS[locale]
    ask = texts.ask.format(company=company, channel=texts.channels.get(channel, channel))
    paragraphs = [(locale, ask), (locale, texts.others)]
    return _render(locale, texts.title, paragraphs, texts.button)


def done_page(locale: str, channel: str, company: str) -> str:
    """The answer to the POST: which channel is stopped."""
    texts = TEXTS[locale]
    done = texts.done.format(company=company, channel=texts.channels.get(channel, channel))
    return _render(locale, texts.done_title, [(locale, done), (locale, texts.others)])


def invalid_page() -> str:
    """A link whose signature does not match: in every language."""
    return _everyone("invalid")


def unknown_page() -> str:
    """A valid link whose customer is no longer stored: in every language."""
    return _everyone("unknown")


def _everyone(text: str) -> str:
    paragraphs = [(locale, getattr(TEXTS[locale], text)) for locale in LOCALES]
    title = " / ".join(TEXTS[locale].title for locale in LOCALES)
    return _render(DEFAULT_LOCALE, title, paragraphs)


def _render(lang: str, title: str, paragraphs: list[tuple[str, str]], button: str = "") -> str:
    return _PAGE.render(lang=lang, title=title, paragraphs=paragraphs, button=button)
