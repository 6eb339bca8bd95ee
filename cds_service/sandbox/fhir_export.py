"""FHIR Bulk Data ``Group/[id]/$export`` on the synthetic ``/fhir`` endpoint, so the clinic
worklist can be tried against the sandbox's demo Group in one command.

The export is answered at once and keeps no state: the job id in the status and file URLs
says which group and types were asked for, and every file is cut from the in-memory store
(dates shifted to the service's today, like every other answer of ``/fhir``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import UTC

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cds_service.api.errors import ApiError
from cds_service.sandbox.fhir_server import fhir_response
from cds_service.sandbox.fhir_store import (
    FHIR_ID,
    RESOURCE_TYPE,
    FixtureFhirStore,
    Resource,
    Search,
    patient_of,
)
from cds_service.sandbox.fixture_library import FixtureLibrary

NDJSON = "application/fhir+ndjson"
# Types outside any patient's compartment that an export still carries (R4 Bulk Data: the
# Medications the medication resources point at).
_SHARED_TYPES = ("Medication",)


def _job(group_id: str, types: list[str]) -> str:
    raw = orjson.dumps({"g": group_id, "t": types})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _read_job(job: str) -> tuple[str, list[str]]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(job + "=" * (-len(job) % 4)))
        group_id, types = data["g"], data["t"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ApiError(404, "no such export") from None
    if not (isinstance(group_id, str) and FHIR_ID.match(group_id) and isinstance(types, list)
            and all(isinstance(t, str) and RESOURCE_TYPE.match(t) for t in types)):
        raise ApiError(404, "no such export")
    return group_id, types


def _members(store: FixtureFhirStore, group_id: str) -> frozenset[str]:
    group = store.read("Group", group_id)
    if group is None:
        raise ApiError(404, f"Group/{group_id} is not known")
    return frozenset(
        m["entity"]["reference"].removeprefix("Patient/") for m in group.get("member", [])
        if str(m.get("entity", {}).get("reference", "")).startswith("Patient/"))


def _exported(store: FixtureFhirStore, members: frozenset[str], resource_type: str
              ) -> list[Resource]:
    if resource_type in _SHARED_TYPES:
        return store.search(Search(resource_type))
    if resource_type == "Patient":
        return store.search(Search("Patient", ids=members))
    return [r for r in store.search(Search(resource_type, patient_ids=members))
            if patient_of(r) in members]


def _types(requested: str | None, store: FixtureFhirStore) -> list[str]:
    if requested is None:
        return sorted(t for t in store.resource_types if t != "Group")
    types = [t for t in requested.split(",") if t]
    if not all(RESOURCE_TYPE.match(t) for t in types):
        raise ApiError(400, "_type must list resource types")
    return types


def export_router(library: FixtureLibrary) -> APIRouter:
    router = APIRouter(prefix="/fhir", tags=["fixture FHIR server"])

    async def store(request: Request) -> FixtureFhirStore:
        return await run_in_threadpool(library.fhir_store, request.app.state.runtime.engine
                                       .clock())

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/") + "/fhir"

    @router.get("/Group/{group_id}/$export")
    async def kick_off(group_id: str, request: Request) -> Response:
        s = await store(request)
        if not FHIR_ID.match(group_id):
            raise ApiError(404, "no such group")
        _members(s, group_id)
        job = _job(group_id, _types(request.query_params.get("_type"), s))
        return Response(status_code=202, headers={
            "Content-Location": f"{base(request)}/$export-status/{job}"})

    @router.get("/$export-status/{job}")
    async def status(job: str, request: Request) -> Response:
        s = await store(request)
        group_id, types = _read_job(job)
        members = _members(s, group_id)
        output = [{"type": t, "url": f"{base(request)}/$export-file/{job}/{t}.ndjson",
                   "count": len(found)}
                  for t in types if (found := _exported(s, members, t))]
        now = request.app.state.runtime.engine.clock().astimezone(UTC)
        return fhir_response({
            "transactionTime": now.isoformat().replace("+00:00", "Z"),
            "request": f"{base(request)}/Group/{group_id}/$export?_type={','.join(types)}",
            "requiresAccessToken": False,
            "output": output,
            "error": [],
        })

    @router.get("/$export-file/{job}/{name}")
    async def file(job: str, name: str, request: Request) -> Response:
        s = await store(request)
        group_id, types = _read_job(job)
        resource_type = name.removesuffix(".ndjson")
        if resource_type not in types or not name.endswith(".ndjson"):
            raise ApiError(404, "no such file")
        lines = _ndjson(_exported(s, _members(s, group_id), resource_type))
        return Response(content=lines, media_type=NDJSON)

    return router


def _ndjson(resources: Iterable[Resource]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in resources)
