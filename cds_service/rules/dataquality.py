"""Missing data is a finding, not a silence (rule book: "Conventions"): the rule id its
findings carry (``Draft.missing_data`` builds them for the rule they block)."""

from __future__ import annotations

RULE_ID = "itb-data-quality"
RULE_VERSION = "1.1.0"
OUTCOMES = ("missing-data",)
