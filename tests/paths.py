"""Where tests find the repository and their fixtures, wherever a test module sits."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULESETS = ROOT / "tests" / "rulesets"
RULES_INVALID = ROOT / "tests" / "rules_invalid"
