"""Reading a JSON request body: content type, size limit, nesting limit, then parse."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from cds_service.api.errors import ApiError

JSON_TYPES = ("application/json", "application/fhir+json")


def nesting_depth_exceeds(value: Any, limit: int) -> bool:
    """Level by level, visiting only containers: a chart is mostly scalars."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 1
    while level:
        if depth > limit:
            return True
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        depth += 1
    return False


async def read_json(request: Request, *, max_bytes: int, max_depth: int) -> Any:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        raise ApiError(415, "content type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"request body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"request body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "request body is empty")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "request body is not valid JSON") from None
    if nesting_depth_exceeds(data, max_depth):
        raise ApiError(400, f"JSON nesting is deeper than {max_depth} levels")
    return data
