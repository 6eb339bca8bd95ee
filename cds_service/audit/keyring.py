"""The audit chain's keys: HMAC-SHA256 links that only a key holder can recompute.

A plain SHA-256 chain shows an edit only to someone who trusts the head: whoever can write the
database can rewrite an entry, recompute every later hash and the head, and ``verify`` passes.
With a key, each link is HMAC-SHA256(key, prev_hash + body); rewriting needs the key, which
lives outside the database (a file or a secret setting).

Keys are named by a key id, a fingerprint that is safe to store: every keyed entry carries it
in its hashed body, and the first entry under a new key is a ``key`` entry that records the
rotation. Entries written before any key existed stay plain SHA-256 links and verify as they
are; once a key is in use, a plain link after it, or a chain that ends in one, is a downgrade.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from cds_service.config import Settings

log = logging.getLogger(__name__)

MIN_KEY_CHARS = 32


class AuditKeyError(ValueError):
    """An audit key setting is unusable; ``setting`` names it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def key_id(secret: bytes) -> str:
    """A fingerprint of the key, safe to store beside what it signs."""
    return hashlib.sha256(b"itb-cds audit key id\n" + secret).hexdigest()[:16]


@dataclass(frozen=True)
class AuditKey:
    key_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def of(cls, secret: bytes) -> AuditKey:
        return cls(key_id(secret), secret)

    def link(self, prev_hash: str, body: str) -> str:
        return hmac.new(self.secret, (prev_hash + body).encode("utf-8"),
                        hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditKeyring:
    """The key new entries are written with (None: plain links) and every key that verifies."""

    current: AuditKey | None = None
    keys: Mapping[str, AuditKey] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditKeyring:
        """The keys of ``audit_hmac_key_file`` (oldest first) and ``audit_hmac_key``; the
        secret, else the file's last key, is current. Raises ``AuditKeyError``."""
        keys: list[AuditKey] = []
        if settings.audit_hmac_key_file is not None:
            keys += _read_key_file(settings.audit_hmac_key_file)
        if settings.audit_hmac_key is not None:
            keys.append(_key("ITB_CDS_AUDIT_HMAC_KEY",
                             settings.audit_hmac_key.get_secret_value()))
        if not keys:
            return cls()
        return cls(current=keys[-1], keys=MappingProxyType({k.key_id: k for k in keys}))


def _key(setting: str, text: str) -> AuditKey:
    text = text.strip()
    if len(text) < MIN_KEY_CHARS:
        raise AuditKeyError(setting, f"an audit key must have at least {MIN_KEY_CHARS} "
                                     "characters (e.g. `openssl rand -hex 32`)")
    return AuditKey.of(text.encode("utf-8"))


def _read_key_file(path: Path) -> list[AuditKey]:
    setting = "ITB_CDS_AUDIT_HMAC_KEY_FILE"
    try:
        text = path.read_text("utf-8")
        mode = path.stat().st_mode
    except OSError as exc:
        raise AuditKeyError(setting, f"{path}: cannot be read ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and os.name == "posix":
        log.warning("audit key file %s can be read by other users (mode %o): chmod 600 it",
                    path, stat.S_IMODE(mode))
    lines = [line.strip() for line in text.splitlines()]
    keys = [_key(setting, line) for line in lines if line and not line.startswith("#")]
    if not keys:
        raise AuditKeyError(setting, f"{path}: no key in the file")
    return keys
