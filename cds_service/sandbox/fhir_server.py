"""``/fhir``: a read-only FHIR R4 endpoint over the fixtures, dates shifted to today.

Answers ``GET /fhir/metadata``, ``GET /fhir/{type}/{id}`` and the searches the prefetch
templates make (``patient=``, ``subject=Patient/..``, ``code=`` tokens, ``_id``), paged with
``_count`` and ``_getpagesoffset`` through ``next``/``previous`` links. Search parameters it
does not know are ignored, as FHIR's default lenient handling allows; the ``self`` link shows
the ones that were applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cds_service.api.errors import ApiError
from cds_service.api.responses import JsonResponse
from cds_service.config import Settings
from cds_service.sandbox.fhir_store import (
    FHIR_ID,
    RESOURCE_TYPE,
    FixtureFhirStore,
    Resource,
    Search,
    TokenFilter,
    reference_id,
)
from cds_service.sandbox.fixture_library import FixtureLibrary
from cds_service.services import SERVICES

if TYPE_CHECKING:
    from cds_service.runtime import Runtime

FHIR_JSON = "application/fhir+json"
DEFAULT_COUNT = 100
MAX_COUNT = 1000
FHIR_VERSION = "4.0.1"
GROUP_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
# Types with a ``code`` element the token search applies to (R4 search parameter ``code``).
CODE_SEARCH_TYPES = frozenset(
    {"Observation", "Condition", "Procedure", "AllergyIntolerance", "ServiceRequest"}
)


def template_types(settings: Settings) -> frozenset[str]:
    """Every resource type some prefetch template reads or searches."""
    return frozenset(
        query.split("?", 1)[0].split("/", 1)[0]
        for service in SERVICES
        for query in service.templates(settings).values()
    )


def fhir_response(body: dict[str, Any], status: int = 200) -> Response:
    return JsonResponse(body, status_code=status, media_type=FHIR_JSON)


def _now(request: Request) -> datetime:
    runtime: Runtime = request.app.state.runtime
    return runtime.engine.clock()


def _base_url(request: Request) -> str:
    # The URL the client used, so that paging links stay on the origin it is talking to.
    return str(request.base_url).rstrip("/") + "/fhir"


def _int_param(name: str, value: str, *, maximum: int) -> int:
    if not value.isdigit():
        raise ApiError(400, f"{name} must be a non-negative integer")
    return min(int(value), maximum)


def parse_search(resource_type: str, params: Sequence[tuple[str, str]]
                 ) -> tuple[Search, int, int, list[tuple[str, str]]]:
    """(filters, page size, offset, the parameters applied) from a query string."""
    patients: frozenset[str] | None = None
    ids: frozenset[str] | None = None
    codes: list[TokenFilter] = []
    count, offset = DEFAULT_COUNT, 0
    applied: list[tuple[str, str]] = []
    for name, value in params:
        if name in ("patient", "subject", "subject:Patient", "patient:Patient"):
            # Comma-separated values are alternatives (R4 search: OR); a subject that is not
            # a patient (Group, Device ...) matches nothing here.
            these = frozenset(reference_id(v) for v in value.split(",")
                              if v and ("/" not in v or "Patient/" in v))
            patients = these if patients is None else patients & these
            applied.append((name, value))
        elif name == "code" and resource_type in CODE_SEARCH_TYPES:
            codes.append(TokenFilter.parse(value))
            applied.append((name, value))
        elif name == "_id":
            these = frozenset(v for v in value.split(",") if v)
            ids = these if ids is None else ids & these
            applied.append((name, value))
        elif name == "_count":
            count = _int_param(name, value, maximum=MAX_COUNT)
        elif name == "_getpagesoffset":
            offset = _int_param(name, value, maximum=10**9)
    search = Search(resource_type=resource_type, patient_ids=patients, ids=ids,
                    codes=tuple(codes))
    return search, count, offset, applied


def searchset(
    matches: Sequence[Resource],
    *,
    base: str,
    resource_type: str,
    applied: list[tuple[str, str]],
    count: int,
    offset: int,
    now: datetime,
) -> dict[str, Any]:
    def page_url(at: int) -> str:
        query = urlencode([*applied, ("_count", str(count)), ("_getpagesoffset", str(at))])
        return f"{base}/{resource_type}?{query}"

    page = matches[offset : offset + count] if count else []
    links = [{"relation": "self", "url": page_url(offset)}]
    if count and offset + count < len(matches):
        links.append({"relation": "next", "url": page_url(offset + count)})
    if count and offset > 0:
        links.append({"relation": "previous", "url": page_url(max(0, offset - count))})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now.astimezone(UTC).isoformat().replace("+00:00", "Z")},
        "type": "searchset",
        "total": len(matches),
        "link": links,
    }
    if page:
        bundle["entry"] = [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page
        ]
    return bundle


def capability_statement(types: frozenset[str], base: str, now: datetime) -> dict[str, Any]:
    resources = []
    for rtype in sorted(types):
        params = [
            {"name": "_id", "type": "token"},
            {"name": "patient", "type": "reference"},
            {"name": "subject", "type": "reference"},
        ]
        if rtype in CODE_SEARCH_TYPES:
            params.append({"name": "code", "type": "token"})
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": params,
        }
        if rtype == "Group":  # the demo panel, for the clinic worklist (Bulk Data export)
            entry["operation"] = [{"name": "export", "definition": GROUP_EXPORT}]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.astimezone(UTC).date().isoformat(),
        "kind": "instance",
        "software": {"name": "ITB CDS fixture FHIR server"},
        "implementation": {
            "description": "Read-only FHIR R4 server over the ITB CDS clinical fixtures "
            "(synthetic patients, dates shifted to today)",
            "url": base,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Searches page with _count and _getpagesoffset.",
                "resource": resources,
            }
        ],
    }


def fhir_router(library: FixtureLibrary, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/fhir", tags=["fixture FHIR server"])
    prefetch_types = template_types(settings)

    async def store(request: Request) -> FixtureFhirStore:
        return await run_in_threadpool(library.fhir_store, _now(request))

    def known_types(s: FixtureFhirStore) -> frozenset[str]:
        return s.resource_types | prefetch_types

    def check_type(s: FixtureFhirStore, resource_type: str) -> None:
        if not RESOURCE_TYPE.match(resource_type) or resource_type not in known_types(s):
            raise ApiError(404, f"resource type {resource_type[:64]} is not served here")

    @router.get("/metadata")
    async def metadata(request: Request) -> Response:
        s = await store(request)
        return fhir_response(capability_statement(known_types(s), _base_url(request),
                                                  _now(request)))

    @router.get("/{resource_type}")
    async def search(resource_type: str, request: Request) -> Response:
        s = await store(request)
        check_type(s, resource_type)
        query, count, offset, applied = parse_search(
            resource_type, request.query_params.multi_items()
        )
        return fhir_response(
            searchset(
                s.search(query),
                base=_base_url(request),
                resource_type=resource_type,
                applied=applied,
                count=count,
                offset=offset,
                now=_now(request),
            )
        )

    @router.get("/{resource_type}/{resource_id}")
    async def read(resource_type: str, resource_id: str, request: Request) -> Response:
        s = await store(request)
        check_type(s, resource_type)
        found = s.read(resource_type, resource_id) if FHIR_ID.match(resource_id) else None
        if found is None:
            raise ApiError(404, f"{resource_type}/{resource_id[:64]} is not known")
        return fhir_response(found)

    return router
