"""The in-memory replay cache."""

from __future__ import annotations

from datetime import UTC, datetime

from cds_service.api.auth import InMemoryReplayCache


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
