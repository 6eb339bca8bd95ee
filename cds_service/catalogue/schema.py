"""The schema of cards/*.yaml (pydantic): a file that does not fit fails at load, naming the
file, the path inside it and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cds_service.errors import ConfigurationError

_M = TypeVar("_M", bound=BaseModel)


class CatalogueError(ConfigurationError):
    """A catalogue file is missing, malformed or renders badly (names file, path, problem)."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Spec):
    label: str = Field(min_length=1)
    url: str = Field(pattern=r"^https://\S+$")


class OverrideSpec(_Spec):
    code: str = Field(min_length=1)
    # What the clinician picks from; for a standard code, the code system's own display is
    # ``standard_display`` (the rule book shows both).
    display: str = Field(min_length=1)
    system: str = "local"  # key of common.yaml override_systems
    standard_display: str | None = None
    # Outcomes, or for data-quality cards the blocked rule ids, or note keys: the reason
    # fits a card with any of them; empty: every card of the family.
    applies_to: tuple[str, ...] = ()


class CodeSystemSpec(_Spec):
    url: str = Field(min_length=1)
    title: str = Field(min_length=1)
    version: str | None = None


class RaisedSpec(_Spec):
    """A tier the rule gives this outcome in a stated case (the card's default otherwise)."""

    indicator: Literal["info", "warning", "critical"]
    when: str = Field(min_length=1)


class LinkSpec(_Spec):
    label: str = Field(min_length=1)
    url: str = Field(pattern=r"^https://\S+$")


class SuggestionSpec(_Spec):
    label: str = Field(min_length=1)
    code: str | None = Field(default=None, min_length=1)  # local code of urn:itb-cds:codes
    text: str | None = Field(default=None, min_length=1)  # ServiceRequest.code.text
    before: str | None = None  # number key of the date the request is due before
    note: str | None = None  # template for ServiceRequest.note
    # Instead of creating a ServiceRequest: update the resource the finding is about (a
    # proposed Appointment of appointment-book), moved to the day of this number key.
    moves_to: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SuggestionSpec:
        if self.moves_to is None and (self.code is None or self.text is None):
            raise ValueError("a suggestion creates a request (code and text) or moves the "
                             "proposed resource (moves_to)")
        if self.moves_to is not None and (self.code or self.text or self.before or self.note):
            raise ValueError("moves_to takes no code, text, before or note")
        return self


class OutcomeSpec(_Spec):
    indicator: Literal["info", "warning", "critical"]
    raised: RaisedSpec | None = None
    summary: str = Field(min_length=1)
    detail: str = Field(min_length=1)
    source: str | None = None  # key of common.yaml sources; default: the family's
    suggestions: tuple[SuggestionSpec, ...] = ()


class FamilySpec(_Spec):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    rule: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    source: str
    pump_card: bool = False  # safety reminders travel with the card
    override_reasons: tuple[OverrideSpec, ...] = ()
    links: tuple[LinkSpec, ...] = ()
    notes: dict[str, str] = Field(default_factory=dict)
    # Named blocks of text (templates) every outcome of the family may put in its detail as
    # {{ name }}: the calculation a refill and a battery card share, for instance.
    sections: dict[str, str] = Field(default_factory=dict)
    # Missing-input code -> label template (its words: the chart's, e.g. {{ agent }}).
    missing: dict[str, str] = Field(default_factory=dict)
    outcomes: dict[str, OutcomeSpec] = Field(min_length=1)


class CommonSpec(_Spec):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    code_system: str = Field(min_length=1)
    sources: dict[str, SourceSpec]
    # Standard code systems of override reasons (key -> system); "local" is code_system.
    override_systems: dict[str, CodeSystemSpec]
    # Number key -> how the numbers list names it ("" = not listed: the text says it).
    number_labels: dict[str, str]
    # Evidence-label code -> template of a whole evidence row ("" = not listed: a number
    # cites it), or of its value in words. Templates read the chart's words, date, value
    # and kind_word.
    evidence_labels: dict[str, str]
    # Evidence-label code -> how a number taken from that row cites it ("refill {{ date }}").
    evidence_cites: dict[str, str]
    # Source kind of a number that is not a chart entry -> how it reads ({{ detail }}).
    source_labels: dict[str, str]
    # FHIR resource type -> the word a clinician uses ("" : any other type).
    resource_words: dict[str, str]
    # Times a day -> how a prescriber writes it; "other": any other number ({{ n }}).
    frequency_words: dict[str, str]
    safety_reminders: str = Field(min_length=1)
    # Said on every card when some prefetch data could not be obtained (template gets
    # ``unavailable``: the labels below of the keys that are missing).
    data_gap_note: str = Field(min_length=1)
    prefetch_labels: dict[str, str] = Field(default_factory=dict)
    # The clinic worklist's words (page and calendar feed): a rule id -> the heading of what
    # it lacks, a date key -> the line that says it.
    worklist_words: dict[str, str] = Field(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _some(cls, value: dict[str, SourceSpec]) -> dict[str, SourceSpec]:
        if not value:
            raise ValueError("at least one source is needed")
        return value


# libyaml's loader when PyYAML was built with it: the pure-Python one dominated cold start.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_spec(path: Path, model: type[_M]) -> _M:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise CatalogueError(f"{path}: {problems}") from exc
