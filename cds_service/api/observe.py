"""Every CDS Hooks request, counted, timed and logged as one line, whatever its status.

Plain ASGI middleware inside the CORS layer and outside the routes, so the requests that
never reach a route (unknown service, wrong method, body too large, not JSON, bad token) are
counted too. The count is taken when the response starts, before the client can read it: a
scrape that follows a call always includes it.

A client that hangs up while its body is being read makes Starlette raise ``ClientDisconnect``
up to uvicorn, which logged a 60-line traceback per occurrence; here it is one line.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service.metrics import CURRENT_CALL, CallNote, Metrics, outcome_of
from cds_service.services import SERVICES_BY_ID

log = logging.getLogger("itb_cds.call")

PREFIX = "/cds-services"
DISCONNECTED = "client_disconnected"


def classify(method: str, path: str) -> tuple[str, str] | None:
    """(endpoint, service) of a CDS Hooks path, None for anything else. A service id nobody
    offers is "unknown": client-chosen strings never become label values or log fields."""
    if path.rstrip("/") == PREFIX:
        return "discovery", "-"
    if not path.startswith(PREFIX + "/"):
        return None
    parts = path[len(PREFIX) + 1:].split("/")
    service = parts[0] if parts[0] in SERVICES_BY_ID else "unknown"
    if len(parts) == 2 and parts[1] == "feedback":
        return "feedback", service
    return ("service", service) if len(parts) == 1 else ("other", service)


class CallObserver:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = classify(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        endpoint, service = route
        note = CallNote()
        token = CURRENT_CALL.set(note)
        started = time.perf_counter()
        status: int | None = None

        def count(code: int | str, outcome: str) -> None:
            self.metrics.count_call(endpoint, service, code, outcome,
                                    time.perf_counter() - started)

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                count(status, outcome_of(status, note))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except ClientDisconnect:
            if status is None:
                count(DISCONNECTED, DISCONNECTED)
            self._log(endpoint, service, DISCONNECTED, DISCONNECTED, note, started)
            return
        except Exception:
            if status is None:  # the server error middleware outside answers 500
                status = 500
                count(status, outcome_of(status, note))
            self._log(endpoint, service, status, outcome_of(status, note), note, started)
            raise
        finally:
            CURRENT_CALL.reset(token)
        final = status if status is not None else DISCONNECTED
        outcome = outcome_of(status, note) if status is not None else DISCONNECTED
        self._log(endpoint, service, final, outcome, note, started)

    @staticmethod
    def _log(endpoint: str, service: str, status: int | str, outcome: str, note: CallNote,
             started: float) -> None:
        fields: dict[str, object] = {
            "endpoint": endpoint,
            "service": service,
            "status": status,
            "outcome": outcome,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if note.hook_instance:
            fields["hookInstance"] = note.hook_instance
        if note.answered:
            fields["cards"] = dict(sorted(note.cards.items()))
        if note.fhir_fetches:
            fields["fhir_fetches"] = note.fhir_fetches
            fields["fhir_failures"] = note.fhir_failures
        level = logging.ERROR if isinstance(status, int) and status >= 500 else logging.INFO
        log.log(level, "%s %s %s", endpoint, service, status, extra={"fields": fields})
