"""The FHIR client that fills prefetch gaps from the EHR's ``fhirServer``.

One ``httpx.AsyncClient`` per process (created in the app lifespan). A call fetches every key
concurrently under one hard deadline: the CDS client is waiting for cards, and a late answer is
as useless as none. The bearer token is sent only in the Authorization header and never kept
anywhere else: httpx puts the request (and its headers) into its exceptions, so only our own
messages leave this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from cds_service.config import Settings

log = logging.getLogger(__name__)

_FHIR_JSON = "application/fhir+json, application/json;q=0.9"


@dataclass(frozen=True, slots=True)
class QueryLogEntry:
    """One HTTP request made (the URL never carries the token; see ``_redact``)."""

    key: str
    url: str
    status: int | None  # None when no response arrived
    latency_ms: float
    page: int  # 1 for the first request of a key
    outcome: str  # "ok" or why the page was not usable


@dataclass(frozen=True, slots=True)
class KeyResult:
    """What one key yielded.

    ``error`` is set when nothing usable came back; ``note`` when resources came back but may be
    incomplete (page cap reached, next-link loop, a later page failed, a foreign next link).
    """

    resources: tuple[object, ...] = ()
    pages: int = 0
    error: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class FetchResult:
    results: dict[str, KeyResult]
    log: tuple[QueryLogEntry, ...]


@dataclass(slots=True)
class _Progress:
    resources: list[object] = field(default_factory=list)
    pages: int = 0
    error: str | None = None
    note: str | None = None

    def freeze(self) -> KeyResult:
        return KeyResult(tuple(self.resources), self.pages, self.error, self.note)


class _PageError(Exception):
    """A page that could not be used; the message is ours and safe to keep."""


@dataclass(slots=True)
class _ByteBudget:
    """Bytes one call may still read from the FHIR server, shared by its concurrent keys: a
    server that streams without end must not fill the worker's memory."""

    limit: int
    left: int

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise _PageError(f"responses exceeded the {self.limit} bytes one call may read")


class FhirRequestError(Exception):
    """A request ``FhirClient.open`` could not complete; the message is ours (no URL, no
    token, no server text) and safe to log."""


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (certifi's bundle, or SSL_CERT_FILE) for every outbound client: building
    one reads and parses the whole bundle, ~45 ms of a worker's cold start each time."""
    return httpx.create_ssl_context()


class FhirClient:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self._settings = settings
        self._http = httpx.AsyncClient(
            verify=shared_ssl_context(),
            timeout=httpx.Timeout(settings.fhir_timeout_seconds),
            follow_redirects=False,  # a redirect could carry the token to another host
            transport=transport,
            headers={"Accept": _FHIR_JSON},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    @contextlib.asynccontextmanager
    async def open(self, url: str, token: str | None, *,
                   headers: Mapping[str, str] | None = None,
                   timeout: float | None = None) -> AsyncIterator[httpx.Response]:
        """One GET whose response the caller reads as it arrives (Bulk Data status and NDJSON
        files). The token goes only in the Authorization header; a transport failure is a
        FhirRequestError naming its type only, as in ``fetch_all``."""
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        try:
            async with self._http.stream(
                "GET", url, headers=sent,
                timeout=timeout or self._settings.fhir_timeout_seconds,
            ) as response:
                yield response
        except httpx.TimeoutException:
            raise FhirRequestError("timed out") from None
        except httpx.HTTPError as exc:  # carries the request: keep only the type
            raise FhirRequestError(f"request failed ({type(exc).__name__})") from None

    async def __aenter__(self) -> FhirClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def fetch_all(
        self,
        base_url: str,
        token: str | None,
        queries: Mapping[str, str],
        budget_s: float | None = None,
    ) -> FetchResult:
        """Fetch every query (relative to ``base_url``, or an absolute URL on its host).

        Never raises for a server's misbehaviour; each key reports its own failure.
        """
        budget = self._settings.fhir_budget_seconds if budget_s is None else budget_s
        deadline = time.monotonic() + budget
        entries: list[QueryLogEntry] = []
        progress = {key: _Progress() for key in queries}
        limit = self._settings.fhir_max_bytes_per_call
        budget_bytes = _ByteBudget(limit, limit)
        tasks = {
            asyncio.create_task(
                self._fetch_key(base_url, token, key, query, deadline, progress[key], entries,
                                budget_bytes)
            ): key
            for key, query in queries.items()
        }
        if tasks:
            try:
                done, pending = await asyncio.wait(tasks, timeout=max(0.0, budget))
            finally:
                for task in tasks:  # also when our caller is cancelled: leave nothing running
                    task.cancel()
            for task in done:
                error = task.exception()
                if error is not None:
                    # A bug of ours must not pass for "no resources found".
                    state = progress[tasks[task]]
                    state.error = f"internal error ({type(error).__name__})"
                    state.resources.clear()
            if pending:
                await asyncio.wait(pending)
            for task in pending:
                state = progress[tasks[task]]
                if state.pages:
                    state.note = f"time budget of {budget:g} s ran out after page {state.pages}"
                else:
                    state.error = f"time budget of {budget:g} s ran out"
        results = {key: state.freeze() for key, state in progress.items()}
        for key, result in results.items():
            if not result.ok:
                log.warning("FHIR query for %s failed: %s", key, result.error)
            elif result.note:
                log.warning("FHIR query for %s incomplete: %s", key, result.note)
        return FetchResult(results, tuple(entries))

    async def _fetch_key(
        self,
        base_url: str,
        token: str | None,
        key: str,
        query: str,
        deadline: float,
        state: _Progress,
        entries: list[QueryLogEntry],
        budget_bytes: _ByteBudget,
    ) -> None:
        base = httpx.URL(base_url.rstrip("/") + "/")
        try:
            url: httpx.URL | None = _resolve_url(base, query)
        except _PageError as exc:
            state.error = str(exc)
            return
        is_read = "?" not in query and not query.startswith(("http://", "https://"))
        seen: set[str] = set()
        while url is not None:
            if state.pages >= self._settings.fhir_page_cap:
                state.note = f"page cap of {self._settings.fhir_page_cap} reached"
                return
            if str(url) in seen:
                state.note = "next link loops back to a page already read"
                return
            seen.add(str(url))
            try:
                body = await self._get(key, url, token, deadline, state.pages + 1, entries,
                                       budget_bytes)
                resources, link = _read_page(body, is_read)
            except _PageError as exc:
                if state.pages == 0:
                    state.error = str(exc)
                else:
                    state.note = f"page {state.pages + 1}: {exc}"
                return
            state.pages += 1
            state.resources.extend(resources)
            try:
                url = _next_url(base, link) if link else None
            except _PageError as exc:
                state.note = str(exc)
                return

    async def _get(
        self,
        key: str,
        url: httpx.URL,
        token: str | None,
        deadline: float,
        page: int,
        entries: list[QueryLogEntry],
        budget_bytes: _ByteBudget,
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        remaining = max(0.001, deadline - time.monotonic())
        timeout = min(self._settings.fhir_timeout_seconds, remaining)
        started = time.monotonic()
        status: int | None = None
        outcome = "ok"
        try:
            try:
                async with self._http.stream("GET", url, headers=headers,
                                             timeout=timeout) as response:
                    status = response.status_code
                    if status != 200:
                        raise _PageError(f"HTTP {status}")
                    content = await _read_capped(response, budget_bytes)
            except _PageError:
                raise
            except httpx.TimeoutException:
                raise _PageError("timed out") from None
            except Exception as exc:  # httpx errors carry the request: keep only the type
                raise _PageError(f"request failed ({type(exc).__name__})") from None
            try:
                return orjson.loads(content)
            except orjson.JSONDecodeError:
                raise _PageError("response is not valid JSON") from None
        except _PageError as exc:
            outcome = str(exc)
            raise
        except asyncio.CancelledError:
            outcome = "cancelled at the time budget"
            raise
        finally:
            entries.append(
                QueryLogEntry(
                    key=key,
                    url=_redact(str(url), token),
                    status=status,
                    latency_ms=round((time.monotonic() - started) * 1000, 1),
                    page=page,
                    outcome=outcome,
                )
            )


async def _read_capped(response: httpx.Response, budget_bytes: _ByteBudget) -> bytearray:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > budget_bytes.left:
        raise _PageError(f"responses exceeded the {budget_bytes.limit} bytes one call may read")
    content = bytearray()
    # Decoded bytes: a compressed body is counted at the size it takes in memory.
    async for chunk in response.aiter_bytes():
        budget_bytes.take(len(chunk))
        content += chunk
    return content


def _redact(text: str, token: str | None) -> str:
    # A hostile or careless server could echo the token into a next link.
    return text.replace(token, "***") if token else text


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _under(base: httpx.URL, url: httpx.URL) -> bool:
    """``url`` is ``base`` (which ends in "/") or below it: the allowlist admitted fhirServer,
    not its whole host."""
    encoded_path = url.raw_path.split(b"?", 1)[0].lower()
    if b"%2e" in encoded_path or b"%2f" in encoded_path:  # another path to the server
        return False
    return _same_origin(base, url) and (url.path.startswith(base.path)
                                        or url.path == base.path.rstrip("/"))


def _resolve_url(base: httpx.URL, query: str) -> httpx.URL:
    try:
        url = httpx.URL(query) if query.startswith(("http://", "https://")) else base.join(query)
    except Exception:
        raise _PageError("query is not a valid URL") from None
    if not _under(base, url):
        raise _PageError("URL points outside fhirServer; not followed")
    return url


def _next_url(base: httpx.URL, link: str) -> httpx.URL:
    try:
        url = base.join(link)
    except Exception:
        raise _PageError("next link is not a valid URL") from None
    if not _under(base, url):
        raise _PageError("next link points outside fhirServer; not followed")
    return url


def bundle_entries(bundle: Mapping[str, Any]) -> list[object]:
    """The resources of a Bundle's entries (non-dict entries kept so the parser reports them)."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    return [entry.get("resource") if isinstance(entry, dict) else entry for entry in entries]


def next_link(bundle: Mapping[str, Any]) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def _read_page(body: Any, is_read: bool) -> tuple[list[object], str | None]:
    if not isinstance(body, dict):
        raise _PageError("response is not a FHIR resource")
    resource_type = body.get("resourceType")
    if resource_type == "Bundle":
        return bundle_entries(body), next_link(body)
    if resource_type == "OperationOutcome":
        raise _PageError("server answered with an OperationOutcome")
    if is_read and isinstance(resource_type, str):
        return [body], None
    raise _PageError("search did not return a Bundle")
