"""Pieces every records module shares: the error type the service turns into HTTP answers, UTC timestamps that
read back the same from SQLite and PostgreSQL, canonical JSON, and the injectable clock."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator

from .db import utcnow

if TYPE_CHECKING:
    from ..media.types import DecodedMedia

Clock = Callable[[], datetime]
MAX_TEXT_CHARS = 20_000          # notes, complaint messages, refutation texts
MAX_NAME_CHARS = 200


class RecordsError(Exception):
    """Bad input or a forbidden action, with the HTTP status a thin web layer should answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def to_dict(self) -> dict:
        return {"error": self.message, "status": self.status}


class UtcDateTime(TypeDecorator):
    """Stored as naive UTC (SQLite keeps no zone), always returned timezone-aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive value is taken to be UTC already."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str, what: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (TypeError, ValueError, AttributeError) as exc:
        raise RecordsError(400, f"{what}: not an ISO-8601 date or time: {text!r}") from exc


def decode_upload(data: bytes, what: str = "the file") -> DecodedMedia:
    """Decoded media of uploaded bytes, or a RecordsError (413 when over a limit, else 400)."""
    from ..config import Limits
    from ..media import MediaError, MediaInput, decode

    if not isinstance(data, (bytes, bytearray)) or not data:
        raise RecordsError(400, f"{what}: no content")
    try:
        return decode(MediaInput.from_bytes(bytes(data), "<upload>"), Limits())
    except MediaError as exc:
        raise RecordsError(413 if exc.code == "too_large" else 400, f"{what} cannot be read: {exc.message}") from exc


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def required_text(value: Any, what: str, limit: int = MAX_NAME_CHARS) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordsError(400, f"{what} is required")
    value = value.strip()
    if len(value) > limit:
        raise RecordsError(400, f"{what} is {len(value):,} characters, over the limit of {limit:,}")
    return value


def optional_text(value: Any, what: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return required_text(value, what, limit)


__all__ = ["Clock", "RecordsError", "UtcDateTime", "as_utc", "canonical_json", "decode_upload", "iso", "optional_text", "parse_time",
           "required_text", "utcnow"]
