"""The replay caches: in memory for one worker, in the audit database for a node."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cds_service.audit.database import AuditDatabase, AuditUnavailable
from cds_service.auth.replay import DatabaseReplayCache, InMemoryReplayCache
from tests.pg import PostgresServer, postgres_server


def at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def test_a_jti_is_fresh_once(clock):
    cache = InMemoryReplayCache(clock=clock)

    assert cache.remember("iss", "j1", at(clock.now + 300)) is True
    assert cache.remember("iss", "j1", at(clock.now + 300)) is False


def test_the_same_jti_from_another_issuer_is_a_different_token(clock):
    cache = InMemoryReplayCache(clock=clock)

    assert cache.remember("iss-a", "j1", at(clock.now + 300))
    assert cache.remember("iss-b", "j1", at(clock.now + 300))


def test_a_jti_is_forgotten_once_its_token_has_expired(clock):
    cache = InMemoryReplayCache(clock=clock)
    cache.remember("iss", "j1", at(clock.now + 300))
    cache.remember("iss", "j2", at(clock.now + 600))

    clock.advance(300)

    assert cache.remember("iss", "j3", at(clock.now + 300))
    assert len(cache) == 2  # j1 dropped, j2 and j3 kept
    assert cache.remember("iss", "j1", at(clock.now + 300)) is True
    assert cache.remember("iss", "j2", at(clock.now + 300)) is False


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    yield from postgres_server()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditDatabase]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg")
        url = server.create_database()
    audit = AuditDatabase(url)
    audit.migrate()
    yield audit
    audit.dispose()


def test_a_jti_in_the_database_is_fresh_once_until_it_expires(database: AuditDatabase) -> None:
    cache = DatabaseReplayCache(database)
    now = datetime.now(UTC)
    iss = "https://sandbox.cds-hooks.org"

    assert cache.remember(iss, "jti-1", now + timedelta(minutes=5)) is True
    assert cache.remember(iss, "jti-1", now + timedelta(minutes=5)) is False
    assert cache.remember("https://other.example", "jti-1", now + timedelta(minutes=5))
    assert cache.remember(iss, "jti-old", now - timedelta(seconds=1)) is True
    # Expired: the same jti is fresh again (the JWT layer rejects the expired token itself).
    assert cache.remember(iss, "jti-old", now + timedelta(minutes=5)) is True


def test_an_unreachable_database_fails_closed(tmp_path: Path) -> None:
    database = AuditDatabase(f"sqlite:///{tmp_path / 'missing' / 'audit.sqlite'}")
    cache = DatabaseReplayCache(database)

    with pytest.raises(AuditUnavailable):
        cache.remember("iss", "j1", datetime.now(UTC) + timedelta(minutes=5))
    database.dispose()
