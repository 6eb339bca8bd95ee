"""The rule book (docs/rulebook.md) is generated from the data and committed: CI regenerates it
and fails when the committed one is stale, and it names every rule, outcome, tier, setting,
service and value-set version the service uses, checked against the code's registries."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from pathlib import Path

import pytest

from cds_service.catalogue import Catalogue
from cds_service.cli import main
from cds_service.config import PROJECT_ROOT, Settings
from cds_service.rulebook import GALLERY, HTML, MARKDOWN, RuleBookError, markdown
from cds_service.rulebook.source import load_sources
from cds_service.rules import RULE_VERSIONS, RULES
from cds_service.sandbox.gallery import answer_every_scenario, digest
from cds_service.sandbox.scenarios import OUTCOME_INDICATORS, RAISED_INDICATORS, load_scenarios
from cds_service.services import SERVICES
from cds_service.terminology import Terminology

DOCS = PROJECT_ROOT / "docs"
REGENERATE = "regenerate it: .venv/bin/itb-cds rulebook"


@pytest.fixture
def defaults(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the committed rule book is written for: the defaults, whatever the
    environment of the test run says."""
    import os

    for name in [n for n in os.environ if n.startswith("ITB_CDS_")]:
        monkeypatch.delenv(name)
    return Settings()


@pytest.fixture(scope="module")
def book() -> str:
    return (DOCS / MARKDOWN).read_text(encoding="utf-8")


def chapter(book: str, rule: str) -> str:
    """The text of one rule's chapter (from its anchor to the next rule's)."""
    start = book.index(f'<a id="{rule}"></a>')
    ends = [book.index(f'<a id="{r}"></a>') for r in RULES if r != rule
            and book.index(f'<a id="{r}"></a>') > start] + [book.index("## 5.")]
    return book[start:min(ends)]


def test_the_committed_rule_book_is_the_one_the_data_gives(defaults: Settings,
                                                           book: str) -> None:
    assert markdown(defaults) == book, f"docs/{MARKDOWN} is stale: {REGENERATE}"
    html = (DOCS / HTML).read_text(encoding="utf-8")
    sha = hashlib.sha256(book.encode()).hexdigest()
    assert f'<meta name="itb-cds-rulebook-digest" content="{sha}">' in html, (
        f"docs/{HTML} is stale: {REGENERATE}")


def test_the_committed_card_gallery_shows_today_s_cards(defaults: Settings) -> None:
    entries = asyncio.run(answer_every_scenario(load_scenarios(defaults.fixtures_dir),
                                                defaults))
    gallery = (DOCS / GALLERY).read_text(encoding="utf-8")
    assert f'<meta name="itb-cds-gallery-digest" content="{digest(entries)}">' in gallery, (
        f"docs/{GALLERY} is stale: {REGENERATE}")
    assert gallery.count('<article class="card ') == sum(len(e.cards) for e in entries)
    assert GALLERY in (DOCS / MARKDOWN).read_text(encoding="utf-8")


def test_it_names_every_rule_outcome_and_tier_the_code_and_cards_have(book: str) -> None:
    catalogue = Catalogue.load(PROJECT_ROOT / "cards")
    for rule, (version, outcomes, _notes) in RULES.items():
        text = chapter(book, rule)
        assert f"Rule version {version}" in text
        family = next(f for f in (catalogue.family(n) for n in catalogue.versions)
                      if f is not None and f.rule == rule)
        assert set(family.outcomes) == set(outcomes), rule
        for outcome, spec in family.outcomes.items():
            # The fixtures' tiers (what the scenarios expect) are the cards' tiers.
            assert OUTCOME_INDICATORS[rule][outcome] == spec.indicator, (rule, outcome)
            raised = spec.raised.indicator if spec.raised else None
            assert RAISED_INDICATORS.get((rule, outcome)) == raised, (rule, outcome)
            assert f"##### `{rule}` / `{outcome}` ({spec.indicator})" in text
            row = next(line for line in text.split("\n") if line.startswith(f"| `{outcome}` |"))
            assert f"| {spec.indicator}" in row and (raised is None or raised in row)
            for o in family.override_reasons:
                assert f"| `{o.code}` |" in text


def test_it_names_every_setting_with_its_value_and_every_service(book: str,
                                                                 defaults: Settings) -> None:
    sources = load_sources(defaults)
    for rule in RULES:
        text = chapter(book, rule)
        for section in sources.rule_settings(rule):
            model = getattr(defaults, section)
            for name in type(model).model_fields:
                assert re.search(rf"\| `{section}\.{name}` \| `ITB_CDS_{section.upper()}__"
                                 rf"{name.upper()}` \| {re.escape(str(getattr(model, name)))} \|",
                                 text), f"{rule}: {section}.{name}"
    # Every rule section's settings belong to some rule.
    named = {s for rule in RULES for s in sources.rule_settings(rule)}
    assert named == {"candidacy", "trial", "refill", "battery", "booking"}
    for service in SERVICES:
        assert f"| `{service.id}` | {service.hook} |" in book


def test_it_names_every_value_set_and_table_version(book: str, defaults: Settings) -> None:
    versions = Terminology.load(defaults).versions
    assert versions
    for name, version in versions.items():
        assert f"| Value set or table `{name}` | {version} |" in book
    for rule, version in RULE_VERSIONS.items():
        assert f"| Rule `{rule}` | {version} |" in book
    for name in (p.stem for p in (PROJECT_ROOT / "cds_service/terminology/data/valuesets")
                 .glob("*.yaml")):
        assert f'<a id="vs-{name}"></a>' in book
    assert "**unverified**" in book  # the marks of codes not checked against their systems


def test_a_rule_book_that_names_what_is_not_there_is_refused(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(PROJECT_ROOT / "cards", cards)
    path = cards / "rulebook.yaml"
    path.write_text(path.read_text().replace("[itb-pump-device, itb-pump-implant, "
                                             "itb-pump-removal, itb-pump-replacement",
                                             "[itb-pump-battery, itb-pump-implant, "
                                             "itb-pump-removal, itb-pump-replacement"))
    with pytest.raises(RuleBookError, match=re.escape(
            "rules.itb-battery.value_sets: no value set 'itb-pump-battery'")):
        load_sources(Settings(cards_dir=cards))


def test_itb_cds_rulebook_writes_the_book_its_html_and_the_gallery(
        tmp_path: Path, defaults: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["rulebook", "--out", str(tmp_path)])
    assert done.value.code == 0
    assert (tmp_path / MARKDOWN).read_text() == (DOCS / MARKDOWN).read_text()
    assert "<h2>4. Rules</h2>" in (tmp_path / HTML).read_text()
    assert (tmp_path / GALLERY).stat().st_size > 10_000
    assert capsys.readouterr().out.count("wrote ") == 3
