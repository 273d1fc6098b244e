"""The README's configuration table names every setting the code reads."""

from __future__ import annotations

import re
from pathlib import Path

from engine.loader import load_rules
from rapport.services.settings import Settings
from tests.paths import ROOT

README = ROOT / "README.md"


def test_every_setting_is_documented_with_its_default() -> None:
    text = README.read_text()
    rows = dict(re.findall(r"^\| `(RAPPORT_[A-Z_]+)` \| `([^`]*)` \|", text, re.MULTILINE))
    expected = {
        f"RAPPORT_{name.upper()}": str(field.default)
        for name, field in Settings.model_fields.items()
    }
    assert rows == expected


def test_the_readme_rule_example_is_a_valid_rule(tmp_path: Path) -> None:
    example = re.search(r"```yaml\n(rules:\n.*?)```", README.read_text(), re.DOTALL)
    assert example is not None
    (tmp_path / "example.yaml").write_text(example.group(1))
    result = load_rules(tmp_path)
    assert result.problems == ()
    assert result.ruleset is not None and result.ruleset.rules[0].id == "high_weekly_online_touch"
