"""CORS and security headers, as plain ASGI middleware that runs before routing and auth.

Written by hand rather than with Starlette's CORSMiddleware because CDS Hooks clients (the
Sandbox among them) must get a 2xx preflight on every endpoint, whatever headers they ask
for, and a bare OPTIONS (no preflight headers) must be answered too instead of a 405.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
ALLOW_METHODS = "GET, POST, OPTIONS"
BASE_ALLOW_HEADERS = ("Authorization", "Content-Type", "Accept")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


class CorsAndSecurityHeaders:
    def __init__(
        self, app: ASGIApp, *, origins: Iterable[str], page_prefixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.origins = {o.rstrip("/") for o in origins}
        self.any_origin = "*" in self.origins
        self.page_prefixes = page_prefixes

    def _allowed_origin(self, origin: str | None) -> str | None:
        if not origin:
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
        allowed = self._allowed_origin(origin)

        if scope["method"] == "OPTIONS":
            await self._preflight(send, headers, allowed)
            return

        path: str = scope.get("path", "")
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

    async def _preflight(self, send: Send, headers: Headers, allowed: str | None) -> None:
        requested = headers.get("access-control-request-headers", "")
        allow_headers = list(BASE_ALLOW_HEADERS)
        for name in (h.strip() for h in requested.split(",")):
            if _TOKEN.fullmatch(name) and name.lower() not in {a.lower() for a in allow_headers}:
                allow_headers.append(name)
        response_headers = [
            (b"allow", ALLOW_METHODS.encode()),
            (b"content-length", b"0"),
        ]
        if allowed:
            response_headers += [
                (b"access-control-allow-origin", allowed.encode()),
                (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                (b"access-control-allow-headers", ", ".join(allow_headers).encode("latin-1")),
                (b"access-control-max-age", b"86400"),
            ]
            if allowed != "*":
                response_headers.append((b"vary", b"Origin"))
        for key, value in SECURITY_HEADERS.items():
            response_headers.append((key.lower().encode(), value.encode()))
        await send({"type": "http.response.start", "status": 204, "headers": response_headers})
        await send({"type": "http.response.body", "body": b""})
