"""CORS and security headers, as plain ASGI middleware that runs before routing and auth.

Written by hand rather than with Starlette's CORSMiddleware because CDS Hooks clients (the
Sandbox among them) must get a 2xx preflight on every endpoint, whatever headers they ask
for, and a bare OPTIONS (no preflight headers) must be answered too instead of a 405.

CORS is granted only under ``cors_prefixes`` (the CDS Hooks endpoints, which browsers call
from EHR and Sandbox origins): the admin, sandbox and operator paths answer no other origin.
A preflight advertises the methods the path really has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service.api.errors import outcome_response

_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
BASE_ALLOW_HEADERS = ("Authorization", "Content-Type", "Accept")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


class CorsAndSecurityHeaders:
    def __init__(
        self, app: ASGIApp, *, origins: Iterable[str], page_prefixes: tuple[str, ...],
        cors_prefixes: tuple[str, ...], routes: Sequence[BaseRoute],
    ) -> None:
        self.app = app
        self.origins = {o.rstrip("/") for o in origins}
        self.any_origin = "*" in self.origins
        self.page_prefixes = page_prefixes
        self.cors_prefixes = cors_prefixes
        self.routes = routes  # the app's own list: routes included later count too

    def _methods(self, path: str) -> str | None:
        """What ``Allow`` says for ``path``: its routes' methods, or None for no route."""
        found = []
        for method in ("GET", "POST"):
            scope = {"type": "http", "path": path, "method": method, "root_path": ""}
            if any(route.matches(scope)[0] is Match.FULL for route in self.routes):
                found.append(method)
        return ", ".join([*found, "OPTIONS"]) if found else None

    def _allowed_origin(self, origin: str | None, path: str = "") -> str | None:
        if not origin or not any(path.startswith(p) for p in self.cors_prefixes):
            return None
        if self.any_origin:
            return "*"
        return origin if origin.rstrip("/") in self.origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        path: str = scope.get("path", "")
        allowed = self._allowed_origin(origin, path)

        if scope["method"] == "OPTIONS":
            methods = self._methods(path)
            if methods is None:
                await outcome_response(404, "not found")(scope, receive, send)
                return
            await self._preflight(send, headers, allowed, methods)
            return

        is_page = any(path.startswith(p) for p in self.page_prefixes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    out.setdefault(key, value)
                if not is_page:
                    out.setdefault("Cache-Control", "no-store")
                if allowed:
                    out["Access-Control-Allow-Origin"] = allowed
                    out["Access-Control-Expose-Headers"] = "Content-Type"
                    if allowed != "*":
                        out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _preflight(self, send: Send, headers: Headers, allowed: str | None,
                         methods: str) -> None:
        requested = headers.get("access-control-request-headers", "")
        allow_headers = list(BASE_ALLOW_HEADERS)
        for name in (h.strip() for h in requested.split(",")):
            if _TOKEN.fullmatch(name) and name.lower() not in {a.lower() for a in allow_headers}:
                allow_headers.append(name)
        response_headers = [
            (b"allow", methods.encode()),
            (b"content-length", b"0"),
        ]
        if allowed:
            response_headers += [
                (b"access-control-allow-origin", allowed.encode()),
                (b"access-control-allow-methods", methods.encode()),
                (b"access-control-allow-headers", ", ".join(allow_headers).encode("latin-1")),
                (b"access-control-max-age", b"86400"),
            ]
            if allowed != "*":
                response_headers.append((b"vary", b"Origin"))
        for key, value in SECURITY_HEADERS.items():
            response_headers.append((key.lower().encode(), value.encode()))
        await send({"type": "http.response.start", "status": 204, "headers": response_headers})
        await send({"type": "http.response.body", "body": b""})
