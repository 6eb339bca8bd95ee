"""Domain errors: what can go wrong with a call, in the service's own terms.

The engine raises these; only the edge (``api/errors.py``) turns them into HTTP statuses and
OperationOutcomes, with one formatter. Messages are our own words: never a server's text,
never a token, never request data beyond a field path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cds_service.trace import CallTrace


class CdsError(Exception):
    """A call the service cannot answer with cards."""

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)


class InvalidRequest(CdsError):
    """The request does not follow CDS Hooks (or names another hook): nothing was done."""


class RequiredDataMissing(CdsError):
    """Data no rule can do without could not be obtained. The call happened and is audited:
    ``trace`` is what the audit log records of it."""

    def __init__(self, message: str, details: Sequence[str], trace: CallTrace) -> None:
        super().__init__(message, details)
        self.trace = trace


class FhirServerNotAllowed(CdsError):
    """The call names a fhirServer this service may not query for this caller. Nothing was
    sent to it, and the answer says nothing of what is there."""


class ConfigurationError(RuntimeError):
    """The service's own files or settings are unusable: the process must not start."""


def validation_details(errors: Iterable[Mapping[str, Any]], prefix: str = "") -> list[str]:
    """pydantic (or FastAPI) validation errors as short "field.path: message" lines.

    At most 20, and only the field path and pydantic's message: never the value sent."""
    out = []
    for err in list(errors)[:20]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        out.append(f"{prefix}{where or 'body'}: {err.get('msg', 'invalid')}")
    return out
