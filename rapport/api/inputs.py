"""Checks on request input that its schema cannot express, shared by the routes."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from rapport.api.errors import unprocessable
from storage.import_rows import strings_in

JsonObject = dict[str, Any]


def known_text(value: str) -> None:
    """An id with NUL (0x00) in it names nothing that could be stored."""
    if "\x00" in value:
        raise HTTPException(404, "no such customer")


def encodable(value: Any) -> None:
    """Refuses text JSON can spell but UTF-8 cannot (a lone surrogate such as "\\ud800"):
    it could be neither stored nor sent back."""
    for string in strings_in(value):
        try:
            string.encode("utf-8")
        except UnicodeEncodeError:
            raise unprocessable("the body holds a lone surrogate (\\udXXX)", "body") from None
