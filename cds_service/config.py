"""One settings object for the whole service (env prefix ``ITB_CDS_``).

Clinical thresholds live here next to the operational settings so that an operator can see,
and the audit log can record, every number that drives a card.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class AuthMode(StrEnum):
    OFF = "off"
    JWT = "jwt"


class CandidacySettings(BaseModel):
    min_failed_agents: int = Field(default=1, ge=1)
    tbi_wait_months: int = Field(default=12, ge=0)
    min_age_years: int = Field(default=4, ge=0)


class TrialSettings(BaseModel):
    lookback_days: int = Field(default=30, ge=1)
    mas_drop: float = Field(default=1.0, gt=0)
    penn_drop: int = Field(default=1, ge=1)
    undocumented_after_hours: float = Field(default=8.0, gt=0)
    # Label: screening steps 50 -> 75 -> 100 mcg (25 mcg for very small children); the
    # highest step is the last one a negative trial can go to.
    labeled_steps_mcg: list[float] = Field(default_factory=lambda: [25.0, 50.0, 75.0, 100.0],
                                           min_length=1)
    repeat_after_hours: float = Field(default=24.0, gt=0)
    # Spasticity scores: baseline in the hours before the bolus, effect in a window after it.
    baseline_hours: float = Field(default=24.0, gt=0)
    post_from_hours: float = Field(default=1.0, ge=0)
    post_to_hours: float = Field(default=8.0, gt=0)
    response_window_hours: float = Field(default=24.0, gt=0)
    effect_record_window_hours: float = Field(default=48.0, gt=0)
    # Label: effect shorter than this -> start the pump at twice the screening dose per day.
    long_effect_hours: float = Field(default=8.0, gt=0)


class RefillSettings(BaseModel):
    reserve_ml: float = Field(default=2.0, ge=0)
    max_interval_days: int = Field(default=180, ge=1)
    warn_days: int = Field(default=7, ge=0)
    notice_days: int = Field(default=14, ge=0)


class BatterySettings(BaseModel):
    warn_months: int = Field(default=6, ge=0)
    notice_months: int = Field(default=12, ge=0)
    eri_to_eos_days: int = Field(default=90, ge=0)


class GovernanceSettings(BaseModel):
    """The committee's dashboard (/admin/governance, ``itb-cds audit report --html``)."""

    # Periods (days, weeks or months) one answer may span: a range of years by day would be a
    # page nobody reads and a query nobody waits for; the caller narrows the range instead.
    max_periods: int = Field(default=400, ge=1, le=5000)
    default_period: Literal["day", "week", "month"] = "week"
    # Rules drawn on the "cards fired by rule" chart; the rest are summed as "other".
    chart_rules: int = Field(default=8, ge=1, le=20)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of the service. Field names map to ``ITB_CDS_<NAME>`` environment variables;
    nested clinical thresholds use ``__`` (``ITB_CDS_REFILL__WARN_DAYS=10``)."""

    model_config = SettingsConfigDict(
        env_prefix="ITB_CDS_",
        env_nested_delimiter="__",
        env_file=None,
        extra="ignore",
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8000"
    # "*" by default: CDS clients authenticate with a bearer JWT, not cookies, and the Sandbox and
    # EHR web clients call from origins nobody can list in advance. Production may narrow it.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=64, ge=8)
    # Distinct resources whose validation outcome a worker remembers (0: validate every time).
    # A fact is ~1-2 kB; a remembered model (medication uses) ~18 kB.
    validation_memo_entries: int = Field(default=4096, ge=0)
    # Whole charts (PatientRecords) a worker remembers by their prefetch digests (0: none).
    record_memo_entries: int = Field(default=256, ge=0)
    database_url: str = "sqlite:///itb-cds-audit.sqlite"
    auth_mode: AuthMode = AuthMode.OFF
    trust_sandbox: bool = False
    trust_file: Path | None = None
    jwt_max_lifetime_seconds: int = Field(default=3600, ge=1)
    jwt_leeway_seconds: int = Field(default=60, ge=0)
    jwks_cache_seconds: int = Field(default=3600, ge=0)
    jwks_allow_http: bool = False
    admin_token: str | None = None

    fhir_budget_seconds: float = Field(default=2.0, gt=0)
    fhir_page_cap: int = Field(default=10, ge=1)
    fhir_timeout_seconds: float = Field(default=5.0, gt=0)

    cards_dir: Path = PROJECT_ROOT / "cards"
    fixtures_dir: Path = PROJECT_ROOT / "fixtures"
    # The integration sandbox (/sandbox page, /fhir over synthetic fixtures); off in production.
    sandbox_enabled: bool = True
    spool_path: Path = Path("itb-cds-audit.spool")
    local_code_system: str = "urn:itb-cds:codes"
    mas_alternate_codes: Annotated[list[str], NoDecode] = Field(default_factory=list)

    candidacy: CandidacySettings = Field(default_factory=CandidacySettings)
    trial: TrialSettings = Field(default_factory=TrialSettings)
    refill: RefillSettings = Field(default_factory=RefillSettings)
    battery: BatterySettings = Field(default_factory=BatterySettings)
    governance: GovernanceSettings = Field(default_factory=GovernanceSettings)

    @field_validator("cors_origins", "mas_alternate_codes", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def thresholds(self) -> dict[str, object]:
        """The clinical numbers in force, as recorded with every audit record."""
        return {
            "candidacy": self.candidacy.model_dump(),
            "trial": self.trial.model_dump(),
            "refill": self.refill.model_dump(),
            "battery": self.battery.model_dump(),
        }
