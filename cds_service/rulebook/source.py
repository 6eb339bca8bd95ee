"""What the rule book is generated from: the prose of cards/rulebook.yaml (checked against the
code's registries at load) and the data the service runs on: the card catalogue, the settings
in force, the value-set files, the service and rule registries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from cds_service.catalogue import Catalogue
from cds_service.catalogue.schema import load_spec
from cds_service.config import Settings
from cds_service.errors import ConfigurationError
from cds_service.rules import RULE_ENTRIES, RULES
from cds_service.services import SERVICES
from cds_service.terminology import Terminology
from cds_service.terminology.files import (
    MaxDosesFile,
    ProductStrengthsFile,
    PumpModelsFile,
    UnitsFile,
    ValueSetFile,
)
from cds_service.terminology.terms import DATA_DIR

# The terminology tables a rule may name, and their files.
TABLES = {"pump-models": "pump-models.yaml", "oral-max-doses": "oral-max-doses.yaml",
          "product-strengths": "product-strengths.yaml", "units": "units.yaml"}
# Every settings section some rule reads, in the order the rule entries name them.
RULE_SECTIONS = tuple(dict.fromkeys(
    section for entry in RULE_ENTRIES.values() for sections in entry.reads.values()
    for section in sections))


class RuleBookError(ConfigurationError):
    """cards/rulebook.yaml is malformed or names a rule, value set or source that is not
    there (or leaves one out)."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Attribute(_Spec):
    name: str = Field(min_length=1)
    text: str = Field(min_length=1)


class Convention(_Spec):
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    text: str = Field(min_length=1)


class Input(_Spec):
    input: str = Field(min_length=1)
    source: str = Field(min_length=1)


class Decision(_Spec):
    id: str = Field(min_length=1)
    text: str = Field(min_length=1)


class RuleProse(_Spec):
    intent: str = Field(min_length=1)
    inputs: tuple[Input, ...] = Field(min_length=1)
    value_sets: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    evidence: tuple[str, ...] = Field(min_length=1)
    decisions: tuple[Decision, ...] = ()


class BookSpec(_Spec):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    title: str = Field(min_length=1)
    attributes: tuple[Attribute, ...] = Field(min_length=1)
    conventions: tuple[Convention, ...] = Field(min_length=1)
    local_codes: str = Field(min_length=1)
    unused_value_sets: dict[str, str] = Field(default_factory=dict)
    rules: dict[str, RuleProse]


@dataclass(frozen=True)
class Sources:
    """Everything the rule book says, read once."""

    book: BookSpec
    settings: Settings
    catalogue: Catalogue
    terminology: Terminology
    value_sets: dict[str, ValueSetFile]
    pump_models: PumpModelsFile
    max_doses: MaxDosesFile
    strengths: ProductStrengthsFile
    units_version: str
    local_codes: list[dict[str, Any]]

    @property
    def table_versions(self) -> dict[str, str]:
        return {"pump-models": self.pump_models.version,
                "oral-max-doses": self.max_doses.version,
                "product-strengths": self.strengths.version, "units": self.units_version}

    def rule_settings(self, rule: str) -> list[str]:
        """The settings sections the rule's cards rest on ("refill"), as its entries say."""
        return list(dict.fromkeys(
            section for entry in RULE_ENTRIES.values() for section in entry.reads.get(rule, ())))

    def services_of(self, rule: str) -> list[str]:
        """The services whose rule entries produce this rule's cards (data-quality cards
        come with the rules they block)."""
        found = []
        for spec in SERVICES:
            rules = {r for e in spec.rules for r in RULE_ENTRIES[e].reads}
            if rule in rules or (rule == "itb-data-quality" and rules):
                found.append(spec.id)
        return found


def _read_yaml(path: Path, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise RuleBookError(f"{path}: {exc}") from exc


def load_sources(settings: Settings) -> Sources:
    try:
        book = load_spec(settings.cards_dir / "rulebook.yaml", BookSpec)
    except ConfigurationError as exc:
        raise RuleBookError(str(exc)) from exc
    terminology = Terminology.load(settings)
    value_sets = {p.stem: _read_yaml(p, ValueSetFile)
                  for p in sorted((DATA_DIR / "valuesets").glob("*.yaml"))}
    tables = DATA_DIR / "tables"
    codes = json.loads((DATA_DIR / "codesystem-itb-cds.json").read_text(encoding="utf-8"))
    sources = Sources(
        book=book, settings=settings, catalogue=Catalogue.load(settings.cards_dir),
        terminology=terminology, value_sets=value_sets,
        pump_models=_read_yaml(tables / TABLES["pump-models"], PumpModelsFile),
        max_doses=_read_yaml(tables / TABLES["oral-max-doses"], MaxDosesFile),
        strengths=_read_yaml(tables / TABLES["product-strengths"], ProductStrengthsFile),
        units_version=_read_yaml(tables / TABLES["units"], UnitsFile).version,
        local_codes=list(codes.get("concept", [])),
    )
    check(sources)
    return sources


def check(sources: Sources) -> None:
    """The prose names exactly the rules the code has, and only value sets, tables and
    sources that exist; every value set is some rule's or said to be unused."""
    where = sources.settings.cards_dir / "rulebook.yaml"
    book = sources.book
    if set(book.rules) != set(RULES):
        raise RuleBookError(f"{where}: rules: {sorted(book.rules)} is not the code's "
                            f"rules {sorted(RULES)}")
    used: set[str] = set()
    for rule, prose in book.rules.items():
        for name in prose.value_sets:
            if name not in sources.value_sets:
                raise RuleBookError(f"{where}: rules.{rule}.value_sets: no value set {name!r}")
        unknown = set(prose.tables) - set(TABLES)
        if unknown:
            raise RuleBookError(f"{where}: rules.{rule}.tables: no table {sorted(unknown)}")
        unknown = set(prose.evidence) - set(sources.catalogue.common.sources)
        if unknown:
            raise RuleBookError(f"{where}: rules.{rule}.evidence: no source {sorted(unknown)}")
        used |= set(prose.value_sets)
    orphans = set(sources.value_sets) - used - set(book.unused_value_sets)
    if orphans:
        raise RuleBookError(f"{where}: value sets no rule names: {sorted(orphans)}")
