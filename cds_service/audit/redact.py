"""Keep secrets out of the audit trail: the log outlives every token it could have captured."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that carry credentials in the wild (SMART, OAuth, signed URLs).
_SECRET_PARAMS = frozenset(
    {"access_token", "token", "id_token", "refresh_token", "code", "client_secret", "signature"}
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_JWT_LIKE = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
REDACTED = "[redacted]"


def redact_url(url: str) -> str:
    """The URL without userinfo and without credential-bearing query parameters."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [
            (k, REDACTED if k.lower() in _SECRET_PARAMS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="|,:/",
    )
    return redact_text(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


def redact_text(text: str) -> str:
    """Free text (error messages) without Authorization values or JWT-shaped strings."""
    return _JWT_LIKE.sub(REDACTED, _BEARER.sub(rf"\1 {REDACTED}", text))
