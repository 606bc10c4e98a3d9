"""API keys (one active key per tenant, stored only as a SHA-256 hash) and a token-bucket rate limit per key.

A key reads `dk_<key id>_<secret>`: the public key id finds the row, the hash of the whole key is compared in constant
time. The plain key is shown once, at creation. Each key also carries the secret that signs its job webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Engine, Float, String, select
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, transaction, utcnow

SCOPES = ("scan", "jobs")
KEY_PREFIX = "dk"


class ApiKey(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200), index=True)
    key_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))              # comma-separated subset of SCOPES
    rate_per_second: Mapped[float] = mapped_column(Float)
    burst: Mapped[float] = mapped_column(Float)
    webhook_secret: Mapped[str] = mapped_column(String(100))       # signs this tenant's job webhooks (HMAC-SHA256)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuthError(Exception):
    """Refused credentials: `status` is 401 (missing or unknown key) or 403 (revoked, or scope not granted)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Principal:
    """Who a request acts for, once its key checked out."""

    tenant: str
    key_id: str
    scopes: frozenset[str]
    rate_per_second: float
    burst: float
    webhook_secret: str


@dataclass(frozen=True)
class CreatedKey:
    tenant: str
    key: str                          # the plain key: shown once, never stored
    webhook_secret: str


def create_key(engine: Engine, tenant: str, scopes: tuple[str, ...] = SCOPES, rate_per_second: float = 20.0,
               burst: float = 40.0) -> CreatedKey:
    """A new key for a tenant that has no active key (revoke the old one first)."""
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scope(s) {sorted(unknown)}; choose from {list(SCOPES)}")
    if not tenant.strip():
        raise ValueError("tenant name must not be empty")
    if rate_per_second <= 0 or burst < 1:
        raise ValueError("rate must be > 0 and burst >= 1")
    key_id = secrets.token_hex(6)
    plain = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    webhook_secret = secrets.token_urlsafe(32)
    with transaction(engine) as session:
        active = session.scalar(select(ApiKey).where(ApiKey.tenant == tenant, ApiKey.revoked_at.is_(None)))
        if active is not None:
            raise ValueError(f"tenant {tenant!r} already has an active key ({active.key_id}); revoke it first")
        session.add(ApiKey(key_id=key_id, tenant=tenant, key_sha256=_digest(plain), scopes=",".join(scopes),
                           rate_per_second=rate_per_second, burst=burst, webhook_secret=webhook_secret))
    return CreatedKey(tenant=tenant, key=plain, webhook_secret=webhook_secret)


def revoke_key(engine: Engine, tenant: str) -> int:
    """Revoke the tenant's active key; returns how many keys were revoked (0 or 1)."""
    with transaction(engine) as session:
        rows = session.scalars(select(ApiKey).where(ApiKey.tenant == tenant, ApiKey.revoked_at.is_(None))).all()
        for row in rows:
            row.revoked_at = utcnow()
        return len(rows)


def list_keys(engine: Engine) -> list[dict]:
    with transaction(engine) as session:
        rows = session.scalars(select(ApiKey).order_by(ApiKey.tenant, ApiKey.created_at)).all()
        return [{"tenant": r.tenant, "key_id": r.key_id, "scopes": r.scopes.split(","),
                 "rate_per_second": r.rate_per_second, "burst": r.burst,
                 "created_at": r.created_at.isoformat(),
                 "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None} for r in rows]


def authenticate(engine: Engine, presented: str | None, scope: str) -> Principal:
    """The principal for a presented key, or AuthError (401 missing/unknown, 403 revoked or scope not granted)."""
    if not presented:
        raise AuthError(401, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise AuthError(401, "invalid API key")
    with transaction(engine) as session:
        row = session.get(ApiKey, parts[1])
        # Compare even when the id is unknown, so timing does not reveal which key ids exist.
        expected = row.key_sha256 if row is not None else "0" * 64
        if not hmac.compare_digest(expected, _digest(presented)) or row is None:
            raise AuthError(401, "invalid API key")
        if row.revoked_at is not None:
            raise AuthError(403, "this API key has been revoked")
        scopes = frozenset(row.scopes.split(","))
        if scope not in scopes:
            raise AuthError(403, f"this API key is not allowed the {scope!r} scope")
        return Principal(tenant=row.tenant, key_id=row.key_id, scopes=scopes, rate_per_second=row.rate_per_second,
                         burst=row.burst, webhook_secret=row.webhook_secret)


def webhook_secret(engine: Engine, tenant: str) -> str | None:
    """The active key's webhook signing secret for a tenant."""
    with transaction(engine) as session:
        row = session.scalar(select(ApiKey).where(ApiKey.tenant == tenant, ApiKey.revoked_at.is_(None)))
        return row.webhook_secret if row is not None else None


class CachedAuthenticator:
    """`authenticate` that remembers a good key for `ttl` seconds, sparing a database read per request; a revocation
    therefore takes effect within `ttl`. Entries are keyed by the key's hash, never the key."""

    def __init__(self, engine: Engine, ttl: float = 5.0, clock=time.monotonic):
        self.engine, self.ttl, self._clock = engine, ttl, clock
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, presented: str | None, scope: str) -> Principal:
        digest = _digest(presented) if presented else ""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            if scope not in hit[0].scopes:
                raise AuthError(403, f"this API key is not allowed the {scope!r} scope")
            return hit[0]
        principal = authenticate(self.engine, presented, scope)
        with self._lock:
            self._cache = {d: entry for d, entry in self._cache.items() if entry[1] > now}
            self._cache[digest] = (principal, now + self.ttl)
        return principal


class RateLimiter:
    """Token buckets per key, in memory: each request takes one token; tokens refill at the key's rate up to burst."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}     # key id -> (tokens, last refill time)
        self._lock = threading.Lock()

    def acquire(self, principal: Principal) -> float:
        """0 when a token was taken, else the seconds to wait before one is available (for Retry-After)."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(principal.key_id, (principal.burst, now))
            tokens = min(principal.burst, tokens + (now - last) * principal.rate_per_second)
            if tokens >= 1.0:
                self._buckets[principal.key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[principal.key_id] = (tokens, now)
            return (1.0 - tokens) / principal.rate_per_second


def retry_after_header(wait_seconds: float) -> str:
    return str(max(1, math.ceil(wait_seconds)))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
