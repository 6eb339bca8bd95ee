"""Audit items prepared for the chain before their place in it is known.

The hashed body of an entry is the canonical JSON (chain.canonical_json) of
``{seq, kind, key, hook_instance, card_uuid, occurred_at, payload}``. In sorted key order
``payload`` and ``seq`` come last, so the body is a fixed prefix, the payload's canonical JSON
and the seq, spliced: the expensive part (the record's JSON) is made once, by the caller,
outside the writer's lock, and the bytes are the same as serialising the whole dict.
The spool line of an item is spliced the same way from the same payload text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from pydantic import BaseModel

from cds_service.audit.models import CallRecord, FeedbackRecord


def _json(value: str | None) -> str:
    return orjson.dumps(value).decode("utf-8")


def canonical_record(record: BaseModel) -> str:
    """``canonical_json(record.model_dump(mode="json"))``, the same text, a few times faster.

    pydantic writes the JSON in Rust; orjson reads it back and sorts the keys. A non-finite
    float comes out as a bare NaN/Infinity (see models._Record), which orjson refuses.
    """
    try:
        value = orjson.loads(record.model_dump_json())
    except orjson.JSONDecodeError as exc:
        raise ValueError("non-finite number in an audit record") from exc
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def utc_text(value: datetime) -> str:
    # Fixed width so that text order is time order on every backend.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def feedback_key(item: FeedbackRecord) -> str:
    raw = f"{item.card_uuid}\n{item.outcome}\n{utc_text(item.outcome_timestamp)}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def entry_body(*, seq: int, kind: str, key: str, hook_instance: str | None,
               card_uuid: str | None, occurred_at: str, payload: str,
               key_id: str | None = None) -> str:
    """The hashed text of an entry; ``payload`` is already canonical JSON. A keyed entry
    carries its key id (sorted between "key" and "kind"); a plain one has no such member, so
    its bytes are what they always were."""
    keyed = f'"key_id":{_json(key_id)},' if key_id is not None else ""
    return (f'{{"card_uuid":{_json(card_uuid)},"hook_instance":{_json(hook_instance)},'
            f'"key":{_json(key)},{keyed}"kind":{_json(kind)},'
            f'"occurred_at":{_json(occurred_at)},"payload":{payload},"seq":{seq}}}')


def feedback_payload(feedback: str, hook_instance: str | None) -> str:
    """The payload of a feedback entry: the record, and the call its card came from."""
    unknown = "true" if hook_instance is None else "false"
    return (f'{{"feedback":{feedback},"hook_instance":{_json(hook_instance)},'
            f'"unknown_card":{unknown}}}')


@dataclass(frozen=True, slots=True)
class PreparedCall:
    hook_instance: str
    occurred_at: str
    payload: str
    card_uuids: tuple[str, ...]

    @classmethod
    def of(cls, record: CallRecord) -> PreparedCall:
        return cls(
            hook_instance=record.hook_instance,
            occurred_at=utc_text(record.received_at),
            payload=canonical_record(record),
            card_uuids=tuple(sorted({c.uuid for c in record.cards})),
        )

    def spool_line(self) -> str:
        # canonical_json(SpooledCall(record=...).model_dump(mode="json"))
        return f'{{"kind":"call","record":{self.payload}}}'


@dataclass(frozen=True, slots=True)
class PreparedFeedbackItem:
    key: str
    card_uuid: str
    occurred_at: str
    feedback: str

    @classmethod
    def of(cls, record: FeedbackRecord) -> PreparedFeedbackItem:
        return cls(key=feedback_key(record), card_uuid=record.card_uuid,
                   occurred_at=utc_text(record.received_at), feedback=canonical_record(record))


@dataclass(frozen=True, slots=True)
class PreparedFeedback:
    service_id: str
    records: tuple[PreparedFeedbackItem, ...]

    @classmethod
    def of(cls, service_id: str, records: list[FeedbackRecord]) -> PreparedFeedback:
        return cls(service_id=service_id,
                   records=tuple(PreparedFeedbackItem.of(r) for r in records))

    def spool_line(self) -> str:
        # canonical_json(SpooledFeedback(...).model_dump(mode="json"))
        records = ",".join(r.feedback for r in self.records)
        return f'{{"kind":"feedback","records":[{records}],"service_id":{_json(self.service_id)}}}'


Prepared = PreparedCall | PreparedFeedback
