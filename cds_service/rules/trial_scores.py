"""What the chart says about a trial's effect (rule book: itb-trial-outcome): a
recorded response, Modified Ashworth and Penn scores before and after the bolus, and how long
the effect lasted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cds_service.config import TrialSettings
from cds_service.fhir.record import Concept, ObservationFact, ObservationValue, Quantity
from cds_service.rules.chart import label, quantity_of
from cds_service.rules.dose import duration_hours
from cds_service.rules.index import ChartIndex
from cds_service.rules.trial_events import Trial
from cds_service.terminology import Terminology

# Modified Ashworth Scale as charted: "1+" counts as 1.5 (rule book: itb-trial-outcome,
# decision scores).
_MAS_TEXT = {"0": 0.0, "1": 1.0, "1+": 1.5, "2": 2.0, "3": 3.0, "4": 4.0}


def linked(o: ObservationFact, trial: Trial) -> bool:
    return bool(set(o.part_of + o.derived_from + o.focus) & set(trial.refs))


def _in_baseline(moment: datetime, trial_at: datetime, t: TrialSettings) -> bool:
    return trial_at - timedelta(hours=t.baseline_hours) <= moment <= trial_at


def _in_post(moment: datetime, trial_at: datetime, t: TrialSettings) -> bool:
    return (trial_at + timedelta(hours=t.post_from_hours) <= moment
            <= trial_at + timedelta(hours=t.post_to_hours))


def recorded_response(chart: ChartIndex, trial: Trial, t: TrialSettings
                      ) -> tuple[str, ObservationFact] | None:
    """The latest itb-trial-response for the trial (linked, or within the response window)."""
    window_end = trial.at + timedelta(hours=t.response_window_hours)
    candidates = [
        o for o in chart.observations("itb-trial-response")
        if linked(o, trial) or (o.effective is not None and trial.at <= o.effective
                                <= window_end)
    ]
    for o in reversed(candidates):
        if isinstance(o.value, bool):
            return ("positive" if o.value else "negative"), o
        if isinstance(o.value, Concept):
            found = chart.terms.match("trial-response", o.value)
            if found is not None and found.group:
                return found.group, o
        if isinstance(o.value, str):
            found = chart.terms.match_text("trial-response", o.value)
            if found is not None and found.group:
                return found.group, o
    return None


def mas_score(value: ObservationValue) -> float | None:
    """Modified Ashworth score; "1+" counts as 1.5."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if 0 <= value <= 4 else None
    if isinstance(value, Quantity):
        return value.value if value.value is not None and 0 <= value.value <= 4 else None
    texts: list[str] = []
    if isinstance(value, Concept):
        texts = [c.code or "" for c in value.codings] + [value.text or ""] + [
            c.display or "" for c in value.codings]
    elif isinstance(value, str):
        texts = [value]
    for text in texts:
        key = text.strip().replace(" ", "")
        if key in _MAS_TEXT:
            return _MAS_TEXT[key]
    return None


def _site(o: ObservationFact, terms: Terminology) -> str:
    """The body site's code, else its text; with its side (the laterality value set), so
    the left and right of one coded site are two sites."""
    if o.body_site is None:
        return "unspecified"
    side = terms.match("laterality", o.body_site)
    where = side.group if side is not None and side.group else ""
    for c in o.body_site.codings:
        if c.code:
            return f"{c.system}|{c.code}|{where}"
    return (o.body_site.text or "unspecified").strip().lower()


@dataclass(frozen=True, slots=True)
class SitePair:
    """One body site's Modified Ashworth score before (baseline) and after the trial."""

    site: str
    before: ObservationFact
    after: ObservationFact
    drop: float


def mas_pairs(observations: Sequence[ObservationFact], trial_at: datetime, t: TrialSettings,
              terms: Terminology) -> list[SitePair]:
    """Per body site: the latest score in the baseline window, the lowest in the post window."""
    baseline: dict[str, tuple[datetime, float, ObservationFact]] = {}
    post: dict[str, tuple[float, ObservationFact]] = {}
    for o in observations:
        score = mas_score(o.value)
        if score is None or o.effective is None:
            continue
        site = _site(o, terms)
        if _in_baseline(o.effective, trial_at, t):
            if site not in baseline or o.effective >= baseline[site][0]:
                baseline[site] = (o.effective, score, o)
        elif _in_post(o.effective, trial_at, t):
            if site not in post or score < post[site][0]:
                post[site] = (score, o)
    return [SitePair(s, baseline[s][2], post[s][1], baseline[s][1] - post[s][0])
            for s in baseline if s in post]


def mas_mean_drop(observations: Sequence[ObservationFact], trial_at: datetime,
                  t: TrialSettings, terms: Terminology) -> tuple[float, int] | None:
    """Mean drop over body sites with both a baseline and a post score."""
    pairs = mas_pairs(observations, trial_at, t, terms)
    if not pairs:
        return None
    return sum(p.drop for p in pairs) / len(pairs), len(pairs)


def score_text(o: ObservationFact) -> str | None:
    score = mas_score(o.value)
    if score is None:
        return None
    return "1+" if score == 1.5 else f"{score:g}"


def site_label(o: ObservationFact) -> str:
    return label(o.body_site)


def penn_drop(observations: Sequence[ObservationFact], trial_at: datetime, t: TrialSettings
              ) -> tuple[float, ObservationFact, ObservationFact] | None:
    """The drop from the latest baseline score to the lowest post score (same windows as
    the Modified Ashworth)."""
    before = [o for o in observations
              if o.effective is not None and _in_baseline(o.effective, trial_at, t)]
    after = [o for o in observations
             if o.effective is not None and _in_post(o.effective, trial_at, t)]

    def score(o: ObservationFact) -> float | None:
        q = quantity_of(o)
        if q is not None and q.value is not None:
            return q.value
        if isinstance(o.value, str) and o.value.strip().isdigit():
            return float(o.value.strip())
        return None

    base = [(v, o) for v, o in ((score(o), o) for o in sorted(
        before, key=lambda x: x.effective or trial_at)) if v is not None]
    post = [(v, o) for v, o in ((score(o), o) for o in after) if v is not None]
    if not base or not post:
        return None
    lowest = min(post, key=lambda x: x[0])
    return base[-1][0] - lowest[0], base[-1][1], lowest[1]


def effect_hours(chart: ChartIndex, trial: Trial, t: TrialSettings) -> float | None:
    """How long the effect lasted, in hours (the local code's unit unless it says minutes)."""
    window_end = trial.at + timedelta(hours=t.effect_record_window_hours)
    for o in reversed(chart.observations("itb-trial-effect-duration")):
        if linked(o, trial) or (o.effective is not None and trial.at <= o.effective
                                <= window_end):
            hours = duration_hours(quantity_of(o), chart.terms.units)
            if hours is not None:
                return hours
    return None
