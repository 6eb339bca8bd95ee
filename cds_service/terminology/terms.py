"""The terminology service the rules consult: value sets, model tables, observation codes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cds_service.config import Settings
from cds_service.errors import ConfigurationError
from cds_service.fhir.record import Coding, Concept
from cds_service.terminology.files import (
    MaxDosesFile,
    ProductStrengthsFile,
    PumpModelsFile,
    SystemsFile,
    UnitsFile,
    ValueSetFile,
)
from cds_service.terminology.matching import Match, Systems, ValueSet, phrase_pattern
from cds_service.terminology.tables import ProductStrength, PumpModel, Units, amount_in_text

DATA_DIR = Path(__file__).resolve().parent / "data"
LOCAL_SYSTEM = "urn:itb-cds:codes"

# The local observation codes some rule reads (rule book: "Local codes").
OBSERVATION_CODES: tuple[str, ...] = (
    "pump-reservoir-volume",
    "pump-drug-concentration",
    "pump-daily-dose",
    "pump-low-reservoir-alarm-date",
    "pump-reserve-volume",
    "pump-eri",
    "itb-trial-response",
    "itb-trial-effect-duration",
    "modified-ashworth-scale",
    "penn-spasm-frequency",
)

_M = TypeVar("_M", bound=BaseModel)

# Observations coded in these value sets are read too (rule book: itb-trial-outcome, decisions:
# an overdose sign charted as an Observation), so the prefetch query asks for their codes.
OBSERVED_VALUE_SETS: tuple[str, ...] = ("overdose-signs",)


# libyaml's loader when PyYAML was built with it: the pure-Python one dominated cold start.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TerminologyError(ConfigurationError):
    pass


def _read(path: Path, model: type[_M]) -> _M:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        return model.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise TerminologyError(f"{path.name}: {exc}") from exc


class Terminology:
    def __init__(
        self,
        systems: Systems,
        value_sets: dict[str, ValueSet],
        pump_models: PumpModelsFile,
        max_doses: MaxDosesFile,
        strengths: ProductStrengthsFile,
        local_system: str,
        observation_alternates: dict[tuple[str, str], str],
        versions: dict[str, str],
        units: UnitsFile,
    ) -> None:
        self.systems = systems
        self._value_sets = value_sets
        self.pump_models = tuple(
            PumpModel(m.name, tuple(w.lower() for w in m.match), m.programmable,
                      m.reservoir_ml, m.service_life_years)
            for m in pump_models.models
        )
        self._pump_patterns = tuple(
            (model, tuple(phrase_pattern(w) for w in model.match)) for model in self.pump_models
        )
        self.unknown_programmable_service_life_years = (
            pump_models.unknown_programmable_service_life_years
        )
        self._max_doses = max_doses
        self._strengths = {p.code: ProductStrength(p.code, p.amount, p.unit, p.per, p.display)
                           for p in strengths.products}
        self.local_system = local_system
        self._observation_codes: dict[tuple[str, str], str] = {
            (LOCAL_SYSTEM, code): code for code in OBSERVATION_CODES
        }
        self._observation_codes.update(
            {(local_system, code): code for code in OBSERVATION_CODES}
        )
        self._observation_codes.update(observation_alternates)
        self.versions = versions
        self.units = _units(units)

    @classmethod
    def load(cls, settings: Settings, data_dir: Path = DATA_DIR) -> Terminology:
        systems_file = _read(data_dir / "systems.yaml", SystemsFile)
        canonical = {key: s.uri for key, s in systems_file.systems.items()}
        aliases: dict[str, str] = {}
        for entry in systems_file.systems.values():
            aliases[entry.uri] = entry.uri
            for alias in entry.aliases:
                aliases[alias] = entry.uri
        # A site may configure its own URI for the local code system: read it as ours.
        aliases[settings.local_code_system] = LOCAL_SYSTEM
        dotless = {canonical[key] for key in systems_file.dotless}
        systems = Systems(canonical, aliases, dotless)

        versions: dict[str, str] = {"systems": systems_file.version}
        value_sets: dict[str, ValueSet] = {}
        for path in sorted((data_dir / "valuesets").glob("*.yaml")):
            spec = _read(path, ValueSetFile)
            if spec.name != path.stem:
                raise TerminologyError(f"{path.name}: name {spec.name!r} differs from file")
            unknown = {c.system for c in spec.codes} - canonical.keys()
            if unknown:
                raise TerminologyError(f"{path.name}: unknown systems {sorted(unknown)}")
            value_sets[spec.name] = ValueSet(spec, systems)
            versions[spec.name] = spec.version
        pumps = _read(data_dir / "tables" / "pump-models.yaml", PumpModelsFile)
        doses = _read(data_dir / "tables" / "oral-max-doses.yaml", MaxDosesFile)
        strengths = _read(data_dir / "tables" / "product-strengths.yaml", ProductStrengthsFile)
        # Not listed in `versions`: those are in every card's extension, and listing a new
        # table changes every answer's bytes; it joins them with the next catalogue release.
        units = _read(data_dir / "tables" / "units.yaml", UnitsFile)
        versions["pump-models"] = pumps.version
        versions["oral-max-doses"] = doses.version
        versions["product-strengths"] = strengths.version
        codesystem = _codesystem_version(data_dir / "codesystem-itb-cds.json")
        versions["codesystem-itb-cds"] = codesystem

        alternates: dict[tuple[str, str], str] = {}
        for token in settings.mas_alternate_codes:
            system, sep, code = token.partition("|")
            if sep and system and code:
                alternates[(system, code)] = "modified-ashworth-scale"
        return cls(systems, value_sets, pumps, doses, strengths, settings.local_code_system,
                   alternates, versions, units)

    # ------------------------------------------------------------------ value sets

    def value_set(self, name: str) -> ValueSet:
        return self._value_sets[name]

    def value_set_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._value_sets))

    def match(self, name: str, concept: Concept | None, *extra_text: str | None) -> Match | None:
        return self._value_sets[name].match(concept, *extra_text)

    def match_code(self, name: str, concept: Concept | None) -> Match | None:
        return self._value_sets[name].match_code(concept)

    def display_of(self, coding: Coding) -> str | None:
        """A readable name for a code that carries no display: the first value set listing it."""
        for value_set in self._value_sets.values():
            found = value_set.display_of(coding.system, coding.code)
            if found is not None:
                return found
        return None

    def match_text(self, name: str, text: str | None) -> Match | None:
        return self._value_sets[name].match_text(text)

    def is_local(self, coding: Coding, code: str) -> bool:
        return self.systems.canonical(coding.system) == LOCAL_SYSTEM and coding.code == code

    def has_local(self, concept: Concept | None, code: str) -> bool:
        return concept is not None and any(self.is_local(c, code) for c in concept.codings)

    # ------------------------------------------------------------------ observations

    def observation_kind(self, concept: Concept) -> str | None:
        """The local observation code this Observation.code stands for, if any."""
        for coding in concept.codings:
            if coding.system is None or coding.code is None:
                continue
            kind = self._observation_codes.get((coding.system, coding.code))
            if kind is None:
                kind = self._observation_codes.get(
                    (self.systems.canonical(coding.system) or "", coding.code)
                )
            if kind is not None:
                return kind
        return None

    def observation_filter(self, raw_code: Mapping[str, Any]) -> bool:
        """Cheap test on a raw Observation.code dict: does any rule read this observation?"""
        codings = raw_code.get("coding") if isinstance(raw_code, Mapping) else None
        if not isinstance(codings, list):
            return False
        for coding in codings:
            if isinstance(coding, Mapping):
                system, code = coding.get("system"), coding.get("code")
                if isinstance(system, str) and isinstance(code, str):
                    if (system, code) in self._observation_codes:
                        return True
                    if (self.systems.canonical(system), code) in self._observation_codes:
                        return True
                    if any(self._value_sets[name].match_coding(system, code) is not None
                           for name in OBSERVED_VALUE_SETS):
                        return True
        return False

    def observation_codes(self) -> tuple[tuple[str, str], ...]:
        """(system, code) of every observation read, for the prefetch query."""
        return tuple(self._observation_codes)

    # ------------------------------------------------------------------ tables

    def pump_model(self, *texts: str | None) -> PumpModel | None:
        words = " ".join(t for t in texts if t).lower()
        if not words:
            return None
        for model, patterns in self._pump_patterns:
            if any(p.search(words) for p in patterns):
                return model
        return None

    def max_daily_dose_mg(self, agent: str, age_years: float | None) -> float | None:
        bands = self._max_doses.agents.get(agent)
        if not bands:
            return None
        if age_years is None:
            return max(b.max_mg_per_day for b in bands)
        for band in sorted(bands, key=lambda b: -b.min_age_years):
            if age_years >= band.min_age_years:
                return band.max_mg_per_day
        return None

    def product_strength(self, concept: Concept | None) -> ProductStrength | None:
        if concept is None:
            return None
        rxnorm = self.systems.uri("rxnorm")
        for coding in concept.codings:
            if self.systems.canonical(coding.system) == rxnorm and coding.code:
                found = self._strengths.get(coding.code.strip())
                if found is not None:
                    return found
        return None


def _units(file: UnitsFile) -> Units:
    unknown = [u for u in file.strength_text_units if u not in file.mass_mcg]
    if unknown:
        raise TerminologyError(f"units.yaml: strength_text_units not in mass_mcg: {unknown}")
    return Units(
        mass_mcg={k.lower(): v for k, v in file.mass_mcg.items()},
        time_days={k.lower(): v for k, v in file.time_days.items()},
        timing_per_day={k.upper(): v for k, v in file.timing_codes_per_day.items()},
        dose_forms=frozenset(u.lower() for u in file.dose_forms),
        strength_in_text=amount_in_text(file.strength_text_units),
        trial_dose_in_text=amount_in_text(file.trial_dose_text_units, re.IGNORECASE),
        concentration_mcg_per_ml={k.replace(" ", "").lower(): v
                                  for k, v in file.concentration_mcg_per_ml.items()},
        volume_ml={k.lower(): v for k, v in file.volume_ml.items()},
    )


def _codesystem_version(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TerminologyError(f"{path.name}: {exc}") from exc
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str):
        raise TerminologyError(f"{path.name}: no version")
    return version


@lru_cache(maxsize=4)
def observed_value_set_codes(data_dir: Path = DATA_DIR) -> tuple[tuple[str, str], ...]:
    """(system URI, code) of every exact code of OBSERVED_VALUE_SETS, for the prefetch query."""
    systems = _read(data_dir / "systems.yaml", SystemsFile).systems
    pairs: list[tuple[str, str]] = []
    for name in OBSERVED_VALUE_SETS:
        spec = _read(data_dir / "valuesets" / f"{name}.yaml", ValueSetFile)
        pairs += [(systems[c.system].uri, c.code) for c in spec.codes if not c.prefix]
    return tuple(dict.fromkeys(pairs))
