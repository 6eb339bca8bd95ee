"""A FHIR R4 server on loopback holding a clinic panel (bench/panel.py), for the worklist's
benchmark and tests: reads, the searches the worklist makes (``patient``/``subject`` with
comma-separated alternatives, ``code`` tokens, ``status``, ``_id``, paged with ``_count`` and
``_getpagesoffset``), the Group, and Bulk Data ``Group/[id]/$export`` with one 202 round of
polling before the manifest, NDJSON files streamed.

Indexed by type and patient, so that a search costs what a real server's would, not a scan.

    .venv/bin/python -m bench.panel_server --patients 2000 [--no-export]

prints ``PORT <n>`` once it listens (the benchmark starts it as a separate process, so the
worklist's memory is measured alone).
"""

from __future__ import annotations

import argparse
import itertools
import socket
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from cds_service.sandbox.fhir_server import searchset
from cds_service.sandbox.fhir_store import TokenFilter, patient_of, reference_id

Json = dict[str, Any]
GROUP_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"


class PanelStore:
    def __init__(self, resources: Iterable[Json]) -> None:
        self.authorizations: set[str | None] = set()  # every Authorization header seen
        self.by_id: dict[tuple[str, str], Json] = {}
        self.by_patient: dict[tuple[str, str], list[Json]] = {}
        self.by_type: dict[str, list[Json]] = {}
        for r in resources:
            rtype, rid = r["resourceType"], r["id"]
            self.by_id[(rtype, rid)] = r
            self.by_type.setdefault(rtype, []).append(r)
            pid = patient_of(r)
            if pid is not None:
                self.by_patient.setdefault((rtype, pid), []).append(r)

    def search(self, rtype: str, params: list[tuple[str, str]]) -> list[Json]:
        found: list[Json] | None = None
        for name, value in params:
            if name in ("patient", "subject"):
                ids = [reference_id(v) for v in value.split(",") if v]
                found = [r for pid in ids for r in self.by_patient.get((rtype, pid), [])]
        rows = self.by_type.get(rtype, []) if found is None else found
        for name, value in params:
            if name == "code":
                token = TokenFilter.parse(value)
                rows = [r for r in rows if token.matches(r.get("code"))]
            elif name == "status":
                rows = [r for r in rows if r.get("status") in value.split(",")]
            elif name == "_id":
                rows = [r for r in rows if r["id"] in value.split(",")]
        return rows


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/fhir+json")


def _outcome(status: int, text: str) -> Response:
    return _json({"resourceType": "OperationOutcome",
                  "issue": [{"severity": "error", "code": "not-found", "diagnostics": text}]},
                 status)


def panel_app(store: PanelStore, export: str = "on", retry_after: str = "1") -> Starlette:
    """``export``: "on", "off" (not advertised) or "broken" (advertised, kick-off fails)."""
    polls: dict[str, int] = {}
    jobs = itertools.count(1)

    def base(request: Request) -> str:
        store.authorizations.add(request.headers.get("authorization"))
        return str(request.base_url).rstrip("/") + "/fhir"

    async def metadata(request: Request) -> Response:
        base(request)
        group: Json = {"type": "Group", "interaction": [{"code": "read"}]}
        if export != "off":
            group["operation"] = [{"name": "export", "definition": GROUP_EXPORT}]
        return _json({"resourceType": "CapabilityStatement", "status": "active",
                      "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
                      "date": "2026-06-15", "rest": [{"mode": "server", "resource": [group]}]})

    async def search(request: Request) -> Response:
        rtype = request.path_params["type"]
        params = request.query_params.multi_items()
        found = store.search(rtype, params)
        count = int(request.query_params.get("_count", "100"))
        offset = int(request.query_params.get("_getpagesoffset", "0"))
        applied = [(k, v) for k, v in params if k not in ("_count", "_getpagesoffset")]
        return _json(searchset(found, base=base(request), resource_type=rtype, applied=applied,
                               count=count, offset=offset, now=_NOW))

    async def read(request: Request) -> Response:
        base(request)
        found = store.by_id.get((request.path_params["type"], request.path_params["id"]))
        return _json(found) if found is not None else _outcome(404, "not found")

    async def kick_off(request: Request) -> Response:
        base(request)
        group = store.by_id.get(("Group", request.path_params["id"]))
        if export != "on" or group is None:
            return _outcome(500 if export == "broken" else 404, "no export")
        job = f"job{next(jobs)}"
        types = request.query_params.get("_type", "").split(",")
        polls[job] = 0
        members = [m["entity"]["reference"].removeprefix("Patient/") for m in group["member"]]
        _JOBS[job] = (members, [t for t in types if t])
        return Response(status_code=202,
                        headers={"Content-Location": f"{base(request)}/$export-status/{job}"})

    async def status(request: Request) -> Response:
        base(request)
        job = request.path_params["job"]
        if job not in _JOBS:
            return _outcome(404, "no such export")
        polls[job] += 1
        if polls[job] == 1:  # one round of "come back later", as real servers do
            return Response(status_code=202,
                            headers={"Retry-After": retry_after, "X-Progress": "50%"})
        _, types = _JOBS[job]
        return _json({"transactionTime": "2026-06-15T09:00:00Z", "request": "",
                      "requiresAccessToken": True, "error": [],
                      "output": [{"type": t, "url": f"{base(request)}/$export-file/{job}/{t}"}
                                 for t in types]})

    async def file(request: Request) -> Response:
        base(request)
        members, _ = _JOBS[request.path_params["job"]]
        rtype = request.path_params["type"]
        if rtype in ("Patient", "Medication"):
            chosen: Iterable[Json] = (r for r in store.by_type.get(rtype, [])
                                      if rtype == "Medication" or r["id"] in set(members))
        else:
            chosen = (r for m in members for r in store.by_patient.get((rtype, m), []))
        lines: Iterator[bytes] = (orjson.dumps(r) + b"\n" for r in chosen)
        return StreamingResponse(lines, media_type="application/fhir+ndjson")

    return Starlette(routes=[
        Route("/fhir/metadata", metadata),
        Route("/fhir/Group/{id}/$export", kick_off),
        Route("/fhir/$export-status/{job}", status),
        Route("/fhir/$export-file/{job}/{type}", file),
        Route("/fhir/{type}", search),
        Route("/fhir/{type}/{id}", read),
    ])


_NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
_JOBS: dict[str, tuple[list[str], list[str]]] = {}


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    return sock


def _server(app: Starlette) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                         lifespan="off", ws="none",
                                         timeout_graceful_shutdown=1))


@contextmanager
def serving(store: PanelStore, export: str = "on", retry_after: str = "0") -> Iterator[str]:
    """The panel on loopback in a thread (for tests); yields its FHIR base URL. The socket
    is bound before the thread starts, so nobody waits for start-up."""
    sock = _listening()
    server = _server(panel_app(store, export, retry_after))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/fhir"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args()
    from bench.panel import resources

    store = PanelStore(resources(args.patients))
    sock = _listening()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    _server(panel_app(store, "off" if args.no_export else "on")).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
