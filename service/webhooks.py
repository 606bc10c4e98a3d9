"""Job webhooks: POST the job as JSON, signed with HMAC-SHA256 over "<timestamp>.<body>", retried with backoff.

A receiver recomputes the signature with its webhook secret (printed by `detector keys create`) and rejects stale
timestamps, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Callable

import httpx

SIGNATURE_HEADER = "X-Detector-Signature"
TIMESTAMP_HEADER = "X-Detector-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, max_age_seconds: float = 300.0,
           now: float | None = None) -> bool:
    """What a receiver does: a matching signature over a fresh timestamp."""
    try:
        age = (now if now is not None else time.time()) - int(timestamp)
    except ValueError:
        return False
    return abs(age) <= max_age_seconds and hmac.compare_digest(sign(secret, timestamp, body), signature)


def deliver(url: str, body: bytes, secret: str, attempts: int, backoff_seconds: float,
            sleep: Callable[[float], None] = time.sleep) -> tuple[bool, int, str | None]:
    """(delivered, attempts made, last error). Any 2xx is a delivery; anything else is retried after 1x, 2x, 4x...
    the backoff, each time freshly signed."""
    error: str | None = None
    for attempt in range(1, attempts + 1):
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(secret, timestamp, body)}
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=10.0)
            if 200 <= response.status_code < 300:
                return True, attempt, None
            error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            sleep(backoff_seconds * 2 ** (attempt - 1))
    return False, attempts, error
