"""Every scenario's cards speak to clinicians (issue 16): no setting key, formula symbol,
resource id or snake_case token in a summary or detail; a short clinical lead before the first
list or table; the pump safety reminders at most once per response (once when it has a pump
card); no evidence line said twice."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from cds_service.config import PROJECT_ROOT, Settings
from cds_service.rules import RULES
from cds_service.sandbox.gallery import Entry, answer_every_scenario
from cds_service.sandbox.scenarios import load_scenarios
from cds_service.terminology.terms import DATA_DIR

SCENARIOS = load_scenarios(PROJECT_ROOT / "fixtures")
LEAD_MAX = 350
SAFETY = "**Pump safety**"
PUMP_RULES = {"itb-refill", "itb-battery"}

RESOURCE_TYPES = ("Patient", "Condition", "Medication", "MedicationRequest",
                  "MedicationStatement", "MedicationAdministration", "Observation", "Procedure",
                  "Device", "AllergyIntolerance", "AdverseEvent", "ServiceRequest",
                  "Appointment", "Encounter", "Practitioner")
RESOURCE = re.compile(r"\b(?:" + "|".join(RESOURCE_TYPES) + r")\b(?:/\S+)?")
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
# A number key or other code name in camelCase ("daysUntilDue") shown for want of a label.
CAMEL = re.compile(r"\b[a-z]{2,}[A-Z][a-z]+[A-Za-z]*\b")  # not "mL"
# A formula letter standing alone ("(V - R)·C/D", "L + V"), or the dot of a product.
FORMULA = re.compile(r"(?<![\w.'\u2019])[VCDRL](?![\w.'\u2019])|\u00b7")
# What only developers call things: table and value-set names, "setting x".
DEVELOPER_WORDS = re.compile(
    r"\bsetting [a-z]|\bmodel table\b|\bvalue set\b|\b(?:"
    + "|".join(re.escape(p.stem) for p in (DATA_DIR / "valuesets").glob("*.yaml")
               if "-" in p.stem)  # "dystonia" is a clinical word too
    + r"|oral-max-doses|pump-models|product-strengths)\b")


def setting_keys() -> set[str]:
    keys = set()
    for section in ("candidacy", "trial", "refill", "battery"):
        for name in type(getattr(Settings(), section)).model_fields:
            keys |= {name, f"{section}.{name}"}
    return keys


@pytest.fixture(scope="module")
def entries() -> list[Entry]:
    return asyncio.run(answer_every_scenario(SCENARIOS, Settings()))


def plain(markdown: str) -> str:
    """What a clinician reads: markdown escapes and emphasis gone, no-break spaces as spaces,
    no word joiners."""
    return (markdown.replace("\\", "").replace("**", "").replace("\u00a0", " ")
            .replace("\u2060", ""))


def lead(detail: str) -> list[str]:
    """The paragraphs before the first list, table, heading or bold section title."""
    paragraphs = []
    for block in detail.split("\n\n"):
        first = block.lstrip().split("\n", 1)[0]
        if first.startswith(("- ", "|", "#")) or re.fullmatch(r"\*\*[^*]+\*\*", first):
            break
        paragraphs.append(plain(" ".join(block.split())))
    return paragraphs


def cards(entries: list[Entry]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.scenario.id, c) for e in entries for c in e.cards]


def test_every_scenario_was_answered_with_its_cards(entries: list[Entry]) -> None:
    assert len(entries) == len(SCENARIOS) and all(e.status == 200 for e in entries)
    assert len(cards(entries)) == sum(len(s.expected) for s in SCENARIOS) >= 80
    assert {c["extension"]["itb-cds.finding"]["rule"] for _, c in cards(entries)} == set(RULES)


def test_no_setting_key_formula_resource_id_or_snake_case_reaches_a_clinician(
        entries: list[Entry]) -> None:
    keys = setting_keys()
    problems = []
    for scenario, card in cards(entries):
        for part in ("summary", "detail"):
            text = plain(card.get(part, ""))
            found = (RESOURCE.findall(text) + SNAKE.findall(text) + CAMEL.findall(text)
                     + FORMULA.findall(text)
                     + DEVELOPER_WORDS.findall(text)
                     + [k for k in keys if re.search(rf"\b{re.escape(k)}\b", text)])
            problems += [f"{scenario} {part}: {f!r}" for f in found]
    assert problems == [], "\n".join(problems)


def test_every_detail_leads_with_a_few_short_clinical_lines(entries: list[Entry]) -> None:
    problems = []
    for scenario, card in cards(entries):
        paragraphs = lead(card["detail"])
        size = sum(len(p) for p in paragraphs)
        if not 1 <= len(paragraphs) <= 4 or size > LEAD_MAX:
            problems.append(f"{scenario}: {len(paragraphs)} lead paragraphs, {size} characters")
        if card["detail"].lstrip().startswith(("- ", "|", "**Pump")):
            problems.append(f"{scenario}: the detail does not open with text")
    assert problems == []


def test_safety_reminders_are_said_once_per_response_on_its_first_pump_card(
        entries: list[Entry]) -> None:
    for e in entries:
        said = [i for i, c in enumerate(e.cards) if SAFETY in c.get("detail", "")]
        pump = [i for i, c in enumerate(e.cards)
                if c["extension"]["itb-cds.finding"]["rule"] in PUMP_RULES
                or "device" in c["extension"]["itb-cds.finding"]]
        assert said == pump[:1], e.scenario.id
        for c in e.cards:
            assert c.get("detail", "").count(SAFETY) <= 1


def test_no_evidence_line_is_said_twice(entries: list[Entry]) -> None:
    for scenario, card in cards(entries):
        items = [line for line in card["detail"].split("\n") if line.startswith("- ")]
        assert len(items) == len(set(items)), (scenario, items)
        refs = card["extension"]["itb-cds.finding"].get("evidence", [])
        assert len(refs) == len(set(refs)), scenario


def test_an_order_above_the_maximum_is_a_warning_with_its_arithmetic(
        entries: list[Entry]) -> None:
    [entry] = [e for e in entries if e.scenario.id == "candidacy-order-sign-above-max-sandbox"]
    [card] = entry.cards
    assert card["indicator"] == "warning"
    assert plain(lead(card["detail"])[0]) == (
        "Dose above the maximum: this order 25 mg QID = 100 mg/day + active 20 mg QID = "
        "80 mg/day → 180 mg/day; maximum 80 mg/day. Lower the dose, or stop the order this "
        "one replaces, before signing.")
    # The draft is one line of the chart's evidence, not three.
    assert plain(card["detail"]).count("this order:") == 1
