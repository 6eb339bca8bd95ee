"""Running a fixture through the engine in-process (``itb-cds run``), no server, no audit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cds_service.api.errors import domain_error_outcome, operation_outcome
from cds_service.config import Settings
from cds_service.engine import Engine
from cds_service.errors import CdsError
from cds_service.sandbox.scenarios import Scenario, shifted_request
from cds_service.services import service_for_hook


def request_of(path: Path, now: datetime | None) -> tuple[dict[str, Any], datetime]:
    """The CDS request in a file, and the *now* to evaluate it at.

    A scenario fixture is evaluated at its anchor by default; given ``now``, its dates are
    shifted so that the story holds on that day. A bare CDS Hooks request is evaluated now.
    """
    data = orjson.loads(path.read_bytes())
    if isinstance(data, dict) and "request" in data and "anchor" in data:
        scenario = Scenario.model_validate(data)
        if now is None:
            return scenario.request, scenario.anchor
        return shifted_request(scenario, now), now
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds neither a scenario nor a CDS Hooks request")
    return data, now or datetime.now(UTC)


async def run_fixture(path: Path, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    request, at = request_of(path, now)
    settings = Settings()
    hook = request.get("hook")
    service = service_for_hook(hook)
    if service is None:
        return 400, operation_outcome(400, f"no service answers hook {hook!r}")
    engine = Engine.build(settings, lambda: at)
    try:
        result = await engine.invoke(service, request)
    except CdsError as exc:
        return domain_error_outcome(exc)
    finally:
        await engine.aclose()
    return 200, result.body
