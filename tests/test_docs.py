"""The README's configuration table names every setting the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from rapport.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_documented_with_its_default() -> None:
    text = README.read_text()
    rows = dict(re.findall(r"^\| `(RAPPORT_[A-Z_]+)` \| `([^`]*)` \|", text, re.MULTILINE))
    expected = {
        f"RAPPORT_{name.upper()}": str(field.default)
        for name, field in Settings.model_fields.items()
    }
    assert rows == expected
