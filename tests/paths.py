"""Where tests find the repository and their fixtures, wherever a test module sits."""

from tests.paths import ROOT

ROOT = ROOT
RULESETS = ROOT / "tests" / "rulesets"
RULES_INVALID = ROOT / "tests" / "rules_invalid"
