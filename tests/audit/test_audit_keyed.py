"""Acceptance 5: the audit chain is keyed. Someone who can write the database but has not the
key cannot rewrite an entry and re-hash the rest (nor turn the chain back into plain links);
``itb-cds audit verify`` (the real command) says so. Entries written before the key existed
verify as they are; a rotation is recorded in the chain; the spool is reported; audit files
are 0600."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from cds_service.audit.chain import link_hash
from cds_service.audit.keyring import AuditKey
from cds_service.audit.models import CallRecord
from cds_service.audit.store import AuditStore
from cds_service.config import PROJECT_ROOT, Settings

MakeCall = Callable[..., CallRecord]


def key_file(path: Path, *keys: str) -> Path:
    path.write_text("# oldest first; the last is current\n" + "\n".join(keys) + "\n")
    path.chmod(0o600)
    return path


def keyed(settings: Settings, keys: Path) -> Settings:
    return settings.model_copy(update={"audit_hmac_key_file": keys})


def cli_verify(settings: Settings, keys: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITB_CDS_")}
    env.update({"ITB_CDS_DATABASE_URL": settings.database_url,
                "ITB_CDS_SPOOL_PATH": str(settings.spool_path)})
    if keys is not None:
        env["ITB_CDS_AUDIT_HMAC_KEY_FILE"] = str(keys)
    return subprocess.run([sys.executable, "-m", "cds_service.cli", "audit", "verify"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)


def rehash_from(store: AuditStore, seq: int, *, drop_key_ids: bool) -> None:
    """What an attacker with write access does: rewrite ``seq`` and recompute every later
    link and the head with plain SHA-256 (the only function they can compute)."""
    with store.engine.begin() as conn:
        rows = conn.execute(text("SELECT seq, body, prev_hash FROM audit_entry "
                                 "WHERE seq >= :s ORDER BY seq"), {"s": seq}).all()
        prev = rows[0].prev_hash
        for row in rows:
            body = row.body.replace("pat-", "pat-X") if row.seq == seq else row.body
            if drop_key_ids:
                body = body.replace(f'"key_id":"{row_key_id(conn, row.seq)}",', "")
            digest = link_hash(prev, body)
            conn.execute(text("UPDATE audit_entry SET body = :b, prev_hash = :p, hash = :h"
                              + (", key_id = NULL" if drop_key_ids else "") + " WHERE seq = :s"),
                         {"b": body, "p": prev, "h": digest, "s": row.seq})
            prev = digest
        conn.execute(text("UPDATE audit_head SET hash = :h"
                          + (", key_id = NULL" if drop_key_ids else "") + " WHERE id = 1"),
                     {"h": prev})


def row_key_id(conn: object, seq: int) -> str:
    return str(conn.execute(  # type: ignore[attr-defined]
        text("SELECT key_id FROM audit_entry WHERE seq = :s"), {"s": seq}).scalar_one())


@pytest.mark.parametrize("drop_key_ids", [False, True], ids=["keep-key-ids", "downgrade"])
def test_rewriting_an_entry_and_rehashing_without_the_key_fails_verify(
        settings: Settings, tmp_path: Path, make_call: MakeCall, drop_key_ids: bool) -> None:
    keys = key_file(tmp_path / "audit.key", secrets.token_hex(32))
    store = AuditStore(keyed(settings, keys))
    store.migrate()  # records the key: entry 1
    for n in range(4):
        store.record_call(make_call(n))
    before = cli_verify(settings, keys)
    assert before.returncode == 0, before.stderr
    assert "chain intact: 5 entries, 5 under audit key(s)" in before.stdout

    rehash_from(store, 3, drop_key_ids=drop_key_ids)
    after = cli_verify(settings, keys)
    store.close()

    print(f"\n{after.stderr.strip()}")
    assert after.returncode == 1
    assert "chain BROKEN at seq 3" in after.stderr


def test_a_whole_chain_turned_into_plain_links_fails_verify(
        settings: Settings, tmp_path: Path, make_call: MakeCall) -> None:
    keys = key_file(tmp_path / "audit.key", secrets.token_hex(32))
    store = AuditStore(keyed(settings, keys))
    store.migrate()
    for n in range(3):
        store.record_call(make_call(n))
    rehash_from(store, 1, drop_key_ids=True)  # every link plain, the key entry included
    result = store.verify()
    store.close()
    assert not result.ok
    assert "no entry is linked with it" in (result.reason or "")


def test_plain_entries_from_before_the_key_verify_as_they_are(
        settings: Settings, tmp_path: Path, make_call: MakeCall) -> None:
    legacy = AuditStore(settings)
    legacy.migrate()
    for n in range(3):
        legacy.record_call(make_call(n))
    with legacy.engine.begin() as conn:
        old = conn.execute(text("SELECT seq, body, hash FROM audit_entry ORDER BY seq")).all()
    legacy.close()

    keys = key_file(tmp_path / "audit.key", secrets.token_hex(32))
    store = AuditStore(keyed(settings, keys))
    store.migrate()  # the rotation to the first key is entry 4
    store.record_call(make_call(7))
    result = store.verify()
    with store.engine.begin() as conn:
        rows = conn.execute(text("SELECT seq, kind, body, hash, key_id FROM audit_entry "
                                 "ORDER BY seq")).all()
    store.close()

    assert result.ok, result.reason
    assert (result.checked, result.keyed) == (5, 2)
    assert [(r.seq, r.body, r.hash) for r in rows[:3]] == [tuple(r) for r in old]
    assert rows[3].kind == "key" and '"previous_key_id":null' in rows[3].body
    assert {r.key_id for r in rows[3:]} == {AuditKey.of(keys.read_text().split()[-1]
                                                        .encode()).key_id}
    # Without the key the keyed part cannot be checked: verify says so, it does not pass.
    unkeyed = cli_verify(settings, None)
    assert unkeyed.returncode == 1 and "not configured" in unkeyed.stderr


def test_a_rotation_is_recorded_and_old_keys_still_verify(
        settings: Settings, tmp_path: Path, make_call: MakeCall) -> None:
    first, second = secrets.token_hex(32), secrets.token_hex(32)
    store = AuditStore(keyed(settings, key_file(tmp_path / "k1", first)))
    store.migrate()
    store.record_call(make_call(1))
    store.close()
    both = key_file(tmp_path / "k2", first, second)
    store = AuditStore(keyed(settings, both))
    store.migrate()
    store.record_call(make_call(2))
    result = store.verify()
    store.close()

    ids = [AuditKey.of(k.encode()).key_id for k in (first, second)]
    assert result.ok and result.key_ids == ids
    only_new = cli_verify(settings, key_file(tmp_path / "k3", second))
    assert only_new.returncode == 1 and ids[0] in only_new.stderr


def test_verify_reports_what_the_spool_still_holds(
        settings: Settings, make_call: MakeCall) -> None:
    store = AuditStore(settings)
    store.migrate()
    with store.spool.locked():
        store.spool.append_lines(['{"kind":"call","record":{}}', '{"kind":"call","record":{}}'])
    try:
        assert store.verify().spooled == 2
    finally:
        store.close()
    result = cli_verify(settings, None)
    assert result.returncode == 0
    assert "spool: 2 record(s) waiting for the database" in result.stdout


def test_audit_files_are_readable_by_the_service_user_only(
        tmp_path: Path, make_call: MakeCall) -> None:
    os.umask(0o022)
    (tmp_path / "spool").mkdir()
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'audit.sqlite'}",
                        spool_path=tmp_path / "spool" / "audit.spool",
                        audit_hmac_key=SecretStr(secrets.token_hex(32)))
    store = AuditStore(settings)
    store.spool.append_lines(['{"kind":"call","record":{}}'])  # a torn record goes .rejected
    store.migrate()  # replays the spool: it is rewritten (it used to come back 0644)
    store.record_call(make_call(1))
    store.close()
    files = [p for p in [tmp_path / "audit.sqlite", *(tmp_path / "spool").iterdir(),
                         *tmp_path.glob("audit.sqlite-*")] if p.is_file()]
    assert tmp_path / "spool" / "audit.spool" in files
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {0o600}, modes
