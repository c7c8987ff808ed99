"""API keys: created once, shown once, stored hashed; the caller of each request.

A key is ``gg-`` + 43 URL-safe characters from :func:`secrets.token_urlsafe` (256 random bits). Only
its SHA-256 is stored. A fast hash is the right tool here, unlike for passwords: a slow KDF (bcrypt,
argon2) exists to make guessing *low-entropy* secrets expensive, and no amount of guessing finds a
256-bit random key from its hash; a plain digest also lets each request find its key with one indexed
lookup instead of a deliberately slow computation.

In open mode (``serve --open``) requests need no key; a request that still presents a valid key is
counted under it, anything else under the pseudo-key ``open``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from groundglass.errors import GroundglassError, NotFoundError
from groundglass.server import db

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from groundglass.config import Settings

KEY_PREFIX = "gg-"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's public id, its project and its limits."""

    key_id: str
    project: str
    rpm: int
    tpm: int
    admin: bool = False


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def open_principal(settings: Settings) -> Principal:
    s = settings.server
    return Principal(key_id="open", project="open", rpm=s.default_rpm, tpm=s.default_tpm, admin=True)


class KeyStore:
    """Create, list, revoke and look up keys in the server database."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def create(
        self, project: str, *, rpm: int | None = None, tpm: int | None = None, admin: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """A new key for ``project``: returns (the secret key, its record). The secret is not kept."""
        project = project.strip()
        if not project:
            raise GroundglassError("the project name is empty", "pass --project NAME")
        longest = db.api_keys.c.project.type.length or 200
        if len(project) > longest or "\x00" in project:
            raise GroundglassError(
                f"the project name is {len(project)} characters long", f"use at most {longest} characters"
            )
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value < 1:
                raise GroundglassError(
                    f"--{name} must be at least 1, got {value}", f"pass a positive --{name}"
                )
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        record = {
            "id": "key_" + secrets.token_hex(8),
            "key_hash": hash_key(secret),
            "prefix": secret[:10],
            "project": project,
            "rpm": rpm or self.settings.server.default_rpm,
            "tpm": tpm or self.settings.server.default_tpm,
            "admin": int(admin),
            "created_at": time.time(),
            "revoked_at": None,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(db.api_keys).values(**record))
        return secret, _public(record)

    def list(self, *, include_revoked: bool = True) -> list[dict[str, Any]]:
        q = select(db.api_keys).order_by(db.api_keys.c.created_at)
        if not include_revoked:
            q = q.where(db.api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_public(dict(r._mapping)) for r in conn.execute(q)]

    def revoke(self, key_id_or_key: str) -> dict[str, Any]:
        """Revoke by public id (``key_...``) or by the secret key itself."""
        col = db.api_keys.c
        cond = (
            col.key_hash == hash_key(key_id_or_key)
            if key_id_or_key.startswith(KEY_PREFIX)
            else col.id == key_id_or_key
        )
        with self.engine.begin() as conn:
            row = conn.execute(select(db.api_keys).where(cond)).first()
            if row is None:
                raise NotFoundError(f"no key {key_id_or_key!r}", "see `groundglass keys list` for key ids")
            record = dict(row._mapping)
            if record["revoked_at"] is None:
                record["revoked_at"] = time.time()
                conn.execute(
                    update(db.api_keys).where(col.id == record["id"]).values(revoked_at=record["revoked_at"])
                )
        return _public(record)

    def lookup(self, secret: str) -> Principal | None:
        """The principal of a live key, or None for an unknown or revoked one."""
        col = db.api_keys.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(col.id, col.project, col.rpm, col.tpm, col.admin).where(
                    col.key_hash == hash_key(secret), col.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            return None
        return Principal(key_id=row.id, project=row.project, rpm=row.rpm, tpm=row.tpm, admin=bool(row.admin))


def _public(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k != "key_hash"}
    out["admin"] = bool(out.get("admin"))
    return out


def bearer_token(authorization: str | None) -> str | None:
    """The key in an ``Authorization: Bearer KEY`` header (None when absent)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
