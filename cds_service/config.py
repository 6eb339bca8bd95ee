"""One settings object for the whole service (env prefix ``ITB_CDS_``).

Clinical thresholds live here next to the operational settings so that an operator can see,
and the audit log can record, every number that drives a card.
"""

from __future__ import annotations

from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cds_service.logs import LOG_LEVEL_PATTERN, LogFormat

# The checkout, for tests and scripts; nothing the service reads at run time is found from it
# (an installed wheel has no checkout around it).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Hosts that mean "every interface": a client can never address the service by them.
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def packaged(name: str) -> Path:
    """A data folder shipped inside the package (``cds_service/data/<name>``).

    In the checkout these are links to the top-level ``cards/`` and ``fixtures/``, which stay
    the reviewed sources; the wheel carries copies of them. A real path, because the loaders
    walk folders: the service is installed unpacked, never imported from a zip.
    """
    return Path(str(resources.files("cds_service") / "data" / name))


def default_data_dir() -> Path:
    """Where the audit database and spool go when nothing says otherwise: the user's data
    folder (``$XDG_DATA_HOME/itb-cds``, by default ``~/.local/share/itb-cds`` on Linux), never
    the working directory or the source tree."""
    return Path(platformdirs.user_data_dir("itb-cds", appauthor=False))


class AuthMode(StrEnum):
    OFF = "off"
    JWT = "jwt"


class Profile(StrEnum):
    """What the service refuses to start with: see cds_service/profile.py."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


# The rule sections: every field's description is what the rule book says of it.
class CandidacySettings(BaseModel):
    min_failed_agents: int = Field(
        default=1, ge=1, description="Oral antispasticity agents that must have failed.")
    tbi_wait_months: int = Field(
        default=12, ge=0, description="Months to wait after a traumatic brain injury before "
        "long-term intrathecal baclofen (label: at least one year).")
    min_age_years: int = Field(
        default=4, ge=0, description="Youngest age for a candidacy card (label: 4 years).")
    # Rule book: itb-candidacy, decisions. Recorded under the audit thresholds' "reading"
    # (the candidacy section's keys are as recorded since 1.0).
    trial_recent_months: int = Field(
        default=12, ge=0, exclude=True, description="A screening trial this recent ends the "
        "candidacy card; an older one is mentioned on it (a negative trial at the highest "
        "labeled dose ends it whenever it was).")


class TrialSettings(BaseModel):
    lookback_days: int = Field(
        default=30, ge=1, description="How far back a screening trial counts.")
    mas_drop: float = Field(
        default=1.0, gt=0, description="Mean Modified Ashworth drop over matched body sites "
        "that makes a trial positive.")
    penn_drop: int = Field(
        default=1, ge=1, description="Penn spasm frequency drop that makes a trial positive.")
    undocumented_after_hours: float = Field(
        default=8.0, gt=0, description="Hours after the bolus with no outcome before the "
        "trial is called undocumented.")
    # Label: screening steps 50 -> 75 -> 100 mcg (25 mcg for very small children); the
    # highest step is the last one a negative trial can go to.
    labeled_steps_mcg: list[float] = Field(
        default_factory=lambda: [25.0, 50.0, 75.0, 100.0], min_length=1,
        description="Labeled screening doses (mcg); a negative trial at the highest is final.")
    repeat_after_hours: float = Field(
        default=24.0, gt=0, description="A repeat trial no sooner than this after the last.")
    # Spasticity scores: baseline in the hours before the bolus, effect in a window after it.
    baseline_hours: float = Field(
        default=24.0, gt=0, description="Baseline scores: the hours before the bolus.")
    post_from_hours: float = Field(
        default=1.0, ge=0, description="Effect scores: from this many hours after the bolus.")
    post_to_hours: float = Field(
        default=8.0, gt=0, description="Effect scores: up to this many hours after the bolus.")
    response_window_hours: float = Field(
        default=24.0, gt=0, description="A recorded trial response counts within this many "
        "hours after the bolus.")
    effect_record_window_hours: float = Field(
        default=48.0, gt=0, description="A recorded effect duration counts within this many "
        "hours after the bolus.")
    # Overdose signs recorded within this window after the bolus belong to the trial (its
    # effect lasts 4-8 h; rule book: itb-trial-outcome, decisions). Recorded under the audit
    # thresholds' "reading" (the trial section's keys are as recorded since 1.0).
    overdose_window_hours: float = Field(
        default=24.0, gt=0, exclude=True, description="Overdose signs count when recorded "
        "within this many hours after the bolus.")
    # Label: effect shorter than this -> start the pump at twice the screening dose per day.
    long_effect_hours: float = Field(
        default=8.0, gt=0, description="Effect shorter than this: start the pump at twice "
        "the screening dose per day (label).")
    # How chart entries are read (recorded under thresholds()["reading"], not in "trial": that
    # dict is what every audit record has held since 1.0). A procedure and the administration
    # of its bolus, charted this close to each other, are one trial.
    same_trial_hours: float = Field(
        default=12.0, ge=0, exclude=True, description="A procedure and a bolus charted this "
        "close together are one trial.")
    # A bare number in a procedure extension is a dose in mcg up to this bound: a screening
    # bolus is 25-100 mcg, and a larger number is something else (a volume, a code).
    bare_dose_max_mcg: float = Field(
        default=500.0, gt=0, exclude=True, description="A bare number in a procedure "
        "extension is read as the trial dose (mcg) up to this bound.")


class RefillSettings(BaseModel):
    reserve_ml: float = Field(
        default=2.0, ge=0, description="Low-reservoir alarm volume (mL) when none is "
        "programmed.")
    max_interval_days: int = Field(
        default=180, ge=1, description="Drug stability limit: days between refills at most.")
    warn_days: int = Field(
        default=7, ge=0, description="Refill due within this many days: warning.")
    notice_days: int = Field(
        default=14, ge=0, description="Refill due within this many days: notice (info).")
    # Observations and bookings this close to a refill belong to its visit (rule book:
    # itb-refill, decision same-visit: the same calendar day, +- 1 day). Recorded under
    # thresholds()["reading"].
    same_visit_days: float = Field(
        default=1.0, ge=0, exclude=True, description="Observations and bookings this close "
        "to a refill belong to its visit.")


class BatterySettings(BaseModel):
    warn_months: int = Field(
        default=6, ge=0, description="End of service within this many months: warning, plan "
        "the replacement.")
    notice_months: int = Field(
        default=12, ge=0, description="End of service within this many months: notice "
        "(info).")
    eri_to_eos_days: int = Field(
        default=90, ge=0, description="End of service at most this many days after the "
        "elective replacement indicator.")


class GovernanceSettings(BaseModel):
    """The committee's dashboard (/admin/governance, ``itb-cds audit report --html``)."""

    # Periods (days, weeks or months) one answer may span: a range of years by day would be a
    # page nobody reads and a query nobody waits for; the caller narrows the range instead.
    max_periods: int = Field(default=400, ge=1, le=5000)
    default_period: Literal["day", "week", "month"] = "week"
    # Rules drawn on the "cards fired by rule" chart; the rest are summed as "other".
    chart_rules: int = Field(default=8, ge=1, le=20)


class BookingSettings(BaseModel):
    """appointment-book (issue 17): when a proposed refill or replacement is booked too late."""

    # A battery can stop early, and the elective replacement indicator gives about 90 days'
    # notice at best.
    replacement_margin_days: int = Field(
        default=30, ge=0, description="A pump replacement booked within this many days before "
        "end of service is too close to it: warning, with the latest safe day to book.")


class WorklistSettings(BaseModel):
    """The clinic worklist (``itb-cds worklist``, ``GET /worklist``): every limit it works
    within. ``GET /worklist`` is off until ``fhir_server`` and a token are configured."""

    fhir_server: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    fhir_token: SecretStr | None = None  # the bearer token GET /worklist sends to fhir_server
    # Clinic panel (FHIR Group id) -> the bearer token that clinic's staff use for its
    # worklist; the admin token may ask for any panel (or every pump patient).
    clinic_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    concurrency: int = Field(default=4, ge=1, le=64)  # patients fetched at the same time
    patient_budget_seconds: float = Field(default=20.0, gt=0)  # every query of one patient
    search_page_size: int = Field(default=200, ge=1, le=1000)  # _count of population searches
    search_page_cap: int = Field(default=500, ge=1)  # pages a population search follows
    search_budget_seconds: float = Field(default=300.0, gt=0)  # one population search
    screen_batch: int = Field(default=50, ge=1, le=500)  # Group members per screening search
    max_patients: int = Field(default=20_000, ge=1)  # a panel larger than this is refused
    bulk_export: bool = True  # use Group/$export where the server advertises it
    export_timeout_seconds: float = Field(default=600.0, gt=0)  # kick-off to last file
    export_poll_max_seconds: float = Field(default=10.0, gt=0)  # longest Retry-After honoured
    horizon_days: int = Field(default=180, ge=7, le=730)  # the timeline chart's span


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
    # The URL clients use; JWT audiences are checked against it. Unset, it follows host and
    # port (so moving the port moves the audience with it); see _derived_defaults.
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
    # The audit database and its spool default into data_dir (created 0700 on first use: the
    # audit log holds patient identifiers); see _derived_defaults.
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = "sqlite:///audit.sqlite"
    auth_mode: AuthMode = AuthMode.OFF
    trust_sandbox: bool = False
    trust_file: Path | None = None
    jwt_max_lifetime_seconds: int = Field(default=3600, ge=1)
    jwt_leeway_seconds: int = Field(default=60, ge=0)
    jwks_cache_seconds: int = Field(default=3600, ge=0)
    jwks_allow_http: bool = False
    admin_token: str | None = None

    # Security and limits (profiles). cds_service/profile.py refuses to start a production
    # profile that leaves any of these open; every limit is per worker process.
    profile: Profile = Profile.DEVELOPMENT
    # FHIR servers the service may query (base URLs; a fhirServer at or below one matches),
    # besides those the trust file allows per issuer/tenant; loopback too in development.
    fhir_server_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Keys of the audit chain's HMAC links: a secret, and/or a file of keys (one a line,
    # oldest first; the last is current unless audit_hmac_key is set). Old keys verify.
    audit_hmac_key: SecretStr | None = None
    audit_hmac_key_file: Path | None = None
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)  # request line + headers: 431
    max_header_count: int = Field(default=100, ge=8)  # 431 above it
    header_timeout_seconds: float = Field(default=10.0, gt=0)  # connect/first byte to headers
    body_timeout_seconds: float = Field(default=30.0, gt=0)  # headers to the body's last byte
    keep_alive_seconds: float = Field(default=5.0, gt=0)  # idle between requests
    max_connections: int = Field(default=512, ge=1)  # then idle ones are closed, or 503
    max_in_flight: int = Field(default=64, ge=1)  # requests being answered; 503 beyond
    max_body_bytes_in_flight: int = Field(default=32 * 1024 * 1024, ge=1024)  # 503 beyond
    retry_after_seconds: int = Field(default=1, ge=1)  # Retry-After of those 503s
    fhir_max_bytes_per_call: int = Field(default=16 * 1024 * 1024, ge=64 * 1024)
    admin_failure_delay_seconds: float = Field(default=1.0, ge=0)  # each refused admin call
    admin_failures_per_minute: int = Field(default=10, ge=1)  # then 429 without a delay
    # TLS in the service itself (uvicorn's TLS, every worker); or terminate it in a proxy.
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None

    @field_validator("fhir_server_allowlist", mode="before")
    @classmethod
    def _allowlist_csv(cls, value: object) -> object:
        return _split_csv(value)

    fhir_budget_seconds: float = Field(default=2.0, gt=0)
    fhir_page_cap: int = Field(default=10, ge=1)
    fhir_timeout_seconds: float = Field(default=5.0, gt=0)

    cards_dir: Path = Field(default_factory=lambda: packaged("cards"))
    fixtures_dir: Path = Field(default_factory=lambda: packaged("fixtures"))
    # The integration sandbox (/sandbox page, /fhir over synthetic fixtures); off in production.
    sandbox_enabled: bool = True
    spool_path: Path = Path("audit.spool")
    # Every process (supervisor and each worker) logs at this level, in this format.
    log_level: Annotated[str, Field(pattern=LOG_LEVEL_PATTERN)] = "info"
    log_format: LogFormat = LogFormat.JSON
    local_code_system: str = "urn:itb-cds:codes"
    mas_alternate_codes: Annotated[list[str], NoDecode] = Field(default_factory=list)

    candidacy: CandidacySettings = Field(default_factory=CandidacySettings)
    trial: TrialSettings = Field(default_factory=TrialSettings)
    refill: RefillSettings = Field(default_factory=RefillSettings)
    battery: BatterySettings = Field(default_factory=BatterySettings)
    governance: GovernanceSettings = Field(default_factory=GovernanceSettings)
    booking: BookingSettings = Field(default_factory=BookingSettings)
    worklist: WorklistSettings = Field(default_factory=WorklistSettings)

    @field_validator("cors_origins", "mas_alternate_codes", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @model_validator(mode="after")
    def _derived_defaults(self) -> Settings:
        given = self.model_fields_set
        if "database_url" not in given:
            self.database_url = f"sqlite:///{self.data_dir / 'audit.sqlite'}"
        if "spool_path" not in given:
            self.spool_path = self.data_dir / "audit.spool"
        if "public_base_url" not in given:
            if self.auth_mode is AuthMode.JWT and self.host in _WILDCARD_HOSTS:
                # The audience would be http://0.0.0.0:...: every token refused, silently.
                raise ValueError("ITB_CDS_PUBLIC_BASE_URL must be set when ITB_CDS_AUTH_MODE "
                                 f"is jwt and the service binds to {self.host or 'all'} "
                                 "(it is the audience every client token must name)")
            host = f"[{self.host}]" if ":" in self.host else self.host
            self.public_base_url = f"http://{host}:{self.port}"
        return self

    def ensure_data_dir(self) -> None:
        """Create ``data_dir`` when the audit database or the spool lives in it (an explicit
        path elsewhere is the operator's to create: a missing folder there is reported)."""
        database = self.data_dir / "audit.sqlite"
        if self.database_url == f"sqlite:///{database}" or self.spool_path.parent == self.data_dir:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def thresholds(self) -> dict[str, object]:
        """The clinical numbers in force, as recorded with every audit record. The four rule
        sections as recorded since 1.0; "reading" holds the later windows that decide how chart
        entries are read (excluded from their sections' dumps)."""
        return {
            "candidacy": self.candidacy.model_dump(),
            "trial": self.trial.model_dump(),
            "refill": self.refill.model_dump(),
            "battery": self.battery.model_dump(),
            "booking": self.booking.model_dump(),
            "reading": {
                "trial.same_trial_hours": self.trial.same_trial_hours,
                "trial.bare_dose_max_mcg": self.trial.bare_dose_max_mcg,
                "refill.same_visit_days": self.refill.same_visit_days,
                "candidacy.trial_recent_months": self.candidacy.trial_recent_months,
                "trial.overdose_window_hours": self.trial.overdose_window_hours,
            },
        }
