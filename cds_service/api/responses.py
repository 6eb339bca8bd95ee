"""JSON responses rendered with orjson (FastAPI's ORJSONResponse is deprecated), and the
policy of the server-rendered pages."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

# A server-rendered page (the governance dashboard, the worklist) needs nothing from anywhere:
# inline styles and SVG only; a browser that obeys this loads nothing else.
STATIC_PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                   "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
