"""FHIR Bulk Data Access (v2): a Group's data as NDJSON files, for the clinic worklist.

Kick-off ``GET Group/[id]/$export?_type=...`` with ``Prefer: respond-async`` (202 and a status
URL), poll the status URL (202 with Retry-After until 200 and the manifest), then stream each
output file line by line: a panel's export is far larger than a worker should hold at once.
Everything goes through ``FhirClient.open``: the token only in the Authorization header, no
redirects, our own messages in errors. The token is sent for the output files only when the
manifest requires it, and then only to the FHIR server's own origin.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from cds_service.fhir.client import FhirClient, FhirRequestError

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
BULK_CAPABILITY = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"


class BulkUnavailable(Exception):
    """The export could not be used (not offered, refused, failed, too slow); the message is
    ours and safe to log. The caller falls back to plain searches."""


@dataclass(frozen=True, slots=True)
class ExportFile:
    resource_type: str
    url: str
    token: bool  # send the bearer token with it (the manifest requires it)


def advertises_group_export(capability: Mapping[str, Any]) -> bool:
    """Whether a CapabilityStatement offers Group/$export (the bulk-data capability, or an
    ``export`` operation on Group)."""
    instantiates = capability.get("instantiates")
    if isinstance(instantiates, list) and BULK_CAPABILITY in instantiates:
        return True
    for rest in _dicts(capability.get("rest")):
        for resource in _dicts(rest.get("resource")):
            if resource.get("type") == "Group" and any(
                    op.get("name") == "export" for op in _dicts(resource.get("operation"))):
                return True
    return False


def _dicts(value: object) -> Iterable[Mapping[str, Any]]:
    return (v for v in value if isinstance(v, dict)) if isinstance(value, list) else ()


def _same_origin(a: str, b: str) -> bool:
    x, y = httpx.URL(a), httpx.URL(b)
    return (x.scheme, x.host, x.port) == (y.scheme, y.host, y.port)


def _retry_after(headers: httpx.Headers, longest: float) -> float:
    value = headers.get("retry-after", "")
    # An HTTP-date is allowed too; a server that sends one gets the longest wait we allow.
    seconds = float(value) if value.strip().isdigit() else longest
    return max(0.05, min(seconds, longest))


async def group_export(client: FhirClient, base_url: str, token: str | None, group_id: str,
                       types: Iterable[str], *, timeout_s: float, poll_max_s: float
                       ) -> list[ExportFile]:
    """Run a Group export to its manifest; the files, in the order of ``types``."""
    wanted = [t for t in types if _RESOURCE_TYPE.match(t)]
    if not _FHIR_ID.match(group_id):
        raise BulkUnavailable("the group id is not a FHIR id")
    base = base_url.rstrip("/")
    kick_off = f"{base}/Group/{group_id}/$export?_type={','.join(wanted)}"
    deadline = time.monotonic() + timeout_s
    try:
        async with client.open(kick_off, token, headers={
                "Accept": "application/fhir+json", "Prefer": "respond-async"}) as response:
            status, location = response.status_code, response.headers.get("content-location")
        if status != 202 or not location:
            raise BulkUnavailable(f"kick-off answered HTTP {status}")
        location = str(httpx.URL(base + "/").join(location))
        if not _same_origin(location, base):
            raise BulkUnavailable("the status URL points outside the FHIR server")
        manifest = await _poll(client, location, token, deadline, poll_max_s)
    except FhirRequestError as exc:
        raise BulkUnavailable(str(exc)) from None
    return _files(manifest, base, wanted)


async def _poll(client: FhirClient, location: str, token: str | None, deadline: float,
                poll_max_s: float) -> Mapping[str, Any]:
    while True:
        async with client.open(location, token, headers={"Accept": "application/json"}
                               ) as response:
            if response.status_code == 200:
                try:
                    manifest = orjson.loads(await response.aread())
                except orjson.JSONDecodeError:
                    raise BulkUnavailable("the manifest is not JSON") from None
                if not isinstance(manifest, dict):
                    raise BulkUnavailable("the manifest is not a JSON object")
                return manifest
            if response.status_code != 202:
                raise BulkUnavailable(f"export status answered HTTP {response.status_code}")
            wait = _retry_after(response.headers, poll_max_s)
        if time.monotonic() + wait > deadline:
            raise BulkUnavailable("the export did not finish in time")
        await asyncio.sleep(wait)  # the server asked us to come back later


def _files(manifest: Mapping[str, Any], base: str, wanted: list[str]) -> list[ExportFile]:
    requires_token = manifest.get("requiresAccessToken") is True
    files = []
    for output in _dicts(manifest.get("output")):
        rtype, url = output.get("type"), output.get("url")
        if not isinstance(rtype, str) or rtype not in wanted or not isinstance(url, str):
            continue
        if requires_token and not _same_origin(url, base):
            raise BulkUnavailable("an output file that needs the token is on another server")
        files.append(ExportFile(rtype, url, requires_token))
    return sorted(files, key=lambda f: wanted.index(f.resource_type))


async def resources(client: FhirClient, file: ExportFile, token: str | None,
                    timeout_s: float) -> AsyncIterator[dict[str, Any]]:
    """The resources of one NDJSON file, as they arrive; a line that is not a JSON object is
    skipped (one bad line must not cost the panel)."""
    try:
        async with client.open(file.url, token if file.token else None, timeout=timeout_s,
                               headers={"Accept": "application/fhir+ndjson"}) as response:
            if response.status_code != 200:
                raise BulkUnavailable(f"an output file answered HTTP {response.status_code}")
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                try:
                    resource = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(resource, dict):
                    yield resource
    except FhirRequestError as exc:
        raise BulkUnavailable(str(exc)) from None
