"""A FHIR server on loopback that is slow or failing, for the soak (bench/soak.py).

Each search answers, at random: after a delay longer than the service's FHIR budget (slow),
with HTTP 500 (failing), by dropping nothing but returning an empty searchset (ok).

    .venv/bin/uvicorn bench.fhir_faults:app --host 127.0.0.1 --port P
"""

from __future__ import annotations

import asyncio
import random

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SLOW_SECONDS = 3.0  # the service's default budget is 2 s


async def search(request: Request) -> Response:
    roll = random.random()
    if roll < 0.4:
        await asyncio.sleep(SLOW_SECONDS)
    elif roll < 0.8:
        return JSONResponse({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "exception"}]}, status_code=500)
    return JSONResponse({"resourceType": "Bundle", "type": "searchset", "total": 0},
                        media_type="application/fhir+json")


app = Starlette(routes=[Route("/fhir/{rest:path}", search)])
