"""One logging setup for every process of the service: supervisor and each worker alike.

Standard-library logging with one handler on the root logger; uvicorn's loggers and httpx's
propagate to it, so everything passes the same redaction and leaves in the same format: one
JSON object per line (``ITB_CDS_LOG_FORMAT=json``, the default) or the same fields as
``key=value`` text. Structured fields travel in ``extra={"fields": {...}}``.

Redaction is the last line of defence, not the first: the service's own messages carry no
token and no patient identifier. It catches what libraries write: a JWT in a query string in
uvicorn's access line, a FHIR URL with ``patient=...`` or ``Patient/<id>`` in it, a token a
FHIR server echoed into a ``next`` link. Exceptions are logged as their type and where they
were raised, never as a traceback or a message: both can carry request data.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from enum import StrEnum

# Imports nothing of the service: the supervisor (cds_service.serve) logs through this module
# and stays light so that its workers start sooner.

LOG_LEVEL_PATTERN = r"(?i)^(debug|info|warning|error|critical)$"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class LogFormat(StrEnum):
    JSON = "json"  # one JSON object per line: what log shippers parse
    TEXT = "text"  # a timestamp, the message, then the same fields as key=value

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A compact JWS (its JSON header always base64url-encodes to "eyJ").
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1[redacted]"),
    # token=... in a query or form, "access_token": "..." in JSON (not "token: <reason>").
    (re.compile(r"(?i)\b((?:access_|id_|refresh_)?token(?:=|[\"']\s*:\s*[\"']))[^\s\"'&,;]+"),
     r"\1[redacted]"),
    # Query strings: search parameters name patients, and a server may echo anything there.
    # (after a URL, a path, or a FHIR search like "Condition?patient=...").
    (re.compile(r"((?:https?://|/)[^\s?\"']*|\b[A-Z][A-Za-z]+)\?[^\s\"']+"), r"\1?[query]"),
    # A read of a patient, as a path or a reference.
    (re.compile(r"\b(Patient/)[A-Za-z0-9\-.]{1,64}"), r"\1[id]"),
)
# httpx writes every request's full URL at INFO, alembic a line per plugin it loads: below
# DEBUG both are held to warnings.
_QUIET_BELOW_DEBUG = ("httpx", "httpcore", "alembic.runtime.plugins")
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class Redact(logging.Filter):
    """Rewrites each record's message, redacted, before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        return True


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields = getattr(record, "fields", None)
    out: dict[str, object] = {}
    if isinstance(fields, dict):
        for key, value in fields.items():
            out[str(key)] = redact(value) if isinstance(value, str) else value
    if record.exc_info and record.exc_info[0] is not None:
        out["exception"] = record.exc_info[0].__name__
        frames = traceback.extract_tb(record.exc_info[2])
        if frames:
            out["at"] = f"{frames[-1].filename}:{frames[-1].lineno}"
    return out


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        line.update(_fields(record))
        return json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        head = f"{_timestamp(record)} {record.levelname:<7} {record.name} [{record.process}] "
        pairs = " ".join(f"{k}={json.dumps(v, default=str, separators=(',', ':'))}"
                         for k, v in _fields(record).items())
        return head + record.getMessage() + (" " + pairs if pairs else "")


def configure_logging(level: str, fmt: LogFormat = LogFormat.JSON) -> None:
    """Replace whatever handlers the process has with the service's one (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt is LogFormat.JSON else TextFormatter())
    handler.addFilter(Redact())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"not a log level: {level!r}")
    root.setLevel(numeric)
    for name in _UVICORN:  # uvicorn installs its own handlers unless told not to
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    for name in _QUIET_BELOW_DEBUG:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING)
                                         if numeric > logging.DEBUG else numeric)


def describe(exc: BaseException) -> str:
    """One line for an error an operator or user must act on: the message of our own errors;
    for a pydantic validation error, each field and its fault without the value given (a
    setting's value may be a secret)."""
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":
        parts = []
        for error in errors():
            where = ".".join(str(p) for p in error.get("loc", ())) or "value"
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return "; ".join(parts)
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
