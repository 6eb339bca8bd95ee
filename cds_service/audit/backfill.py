"""The governance facts of entries written before there were any (migration 0003).

Read from the hashed bodies in seq order, a page at a time, and checked as the batch writer
checks new feedback: against the card as its call recorded it. Cards recorded before they kept
their override reasons cannot have a reason checked (facts.CardCheck.reasons is None).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Table, select, text
from sqlalchemy.engine import Connection

from cds_service.audit.facts import (
    UPDATE_RESPONSE,
    call_facts,
    check_from_row,
    feedback_flags,
    feedback_row,
    response_row,
)
from cds_service.audit.models import CallRecord, FeedbackRecord
from cds_service.audit.schema import audit_entry, gov_call, gov_card, gov_feedback

PAGE = 2000


def _rows(table: Table, rows: list[tuple[object, ...]]) -> list[dict[str, Any]]:
    # A facts row fills the table's leading columns (a card's response columns come later,
    # from its feedback), in the order the writer inserts them.
    names = [c.name for c in table.columns]
    return [dict(zip(names[:len(row)], row, strict=True)) for row in rows]


def _feedback(conn: Connection, pending: list[tuple[int, dict[str, Any]]]) -> None:
    """Facts and flags of a page's feedback, and the responses of the cards they fit."""
    cards = {str(p["feedback"]["card_uuid"]) for _, p in pending}
    checks = {
        (str(r.card_uuid), str(r.hook_instance)): check_from_row(
            str(r.service_id), str(r.suggestions), r.override_reasons)
        for r in conn.execute(
            select(gov_card.c.card_uuid, gov_card.c.hook_instance, gov_card.c.service_id,
                   gov_card.c.suggestions, gov_card.c.override_reasons)
            .where(gov_card.c.card_uuid.in_(sorted(cards))))
    }
    rows, responses = [], []
    for seq, payload in pending:
        record = FeedbackRecord.model_validate(payload["feedback"])
        hook_instance = payload["hook_instance"]
        check = None if hook_instance is None else checks.get((record.card_uuid, hook_instance))
        flags = feedback_flags(check, record.service_id, record)
        rows.append(feedback_row(seq, record, hook_instance, flags))
        if not flags and hook_instance is not None:
            responses.append(response_row(seq, record, hook_instance))
    conn.execute(gov_feedback.insert(), _rows(gov_feedback, rows))
    if responses:  # the writer's statement, its placeholders named for SQLAlchemy
        marks = [f":p{i}" for i in range(10)]
        conn.execute(text(UPDATE_RESPONSE.format(m="{}").format(*marks)),
                     [{f"p{i}": v for i, v in enumerate(r)} for r in responses])


def backfill(conn: Connection) -> int:
    """Facts for every entry of the chain; returns how many entries were read."""
    last, done = 0, 0
    while True:
        page = conn.execute(
            select(audit_entry.c.seq, audit_entry.c.kind, audit_entry.c.body)
            .where(audit_entry.c.seq > last).order_by(audit_entry.c.seq).limit(PAGE)).all()
        if not page:
            return done
        calls: list[tuple[object, ...]] = []
        cards: list[tuple[object, ...]] = []
        pending: list[tuple[int, dict[str, Any]]] = []
        for seq, kind, body in page:
            payload = orjson.loads(body)["payload"]
            if kind == "call":
                facts = call_facts(CallRecord.model_validate(payload))
                calls.append((seq, *facts.call))
                cards.extend((*row[:2], seq, *row[2:]) for row in facts.cards)
            elif kind == "feedback":
                pending.append((int(seq), payload))
            # Any other kind ("key": the chain's record of an audit key) has no facts.
        if calls:
            conn.execute(gov_call.insert(), _rows(gov_call, calls))
        if cards:
            conn.execute(gov_card.insert(), _rows(gov_card, cards))
        if pending:  # after the page's cards: feedback may name a card of the same page
            _feedback(conn, pending)
        last = int(page[-1].seq)
        done += len(page)
