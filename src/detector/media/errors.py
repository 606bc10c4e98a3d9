"""Typed decoding failures. Each becomes one item's `error` result; none escapes a batch."""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal["empty", "truncated", "corrupt", "unsupported", "too_large", "unreadable"]


class MediaError(Exception):
    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def decoding_error(exc: Exception) -> MediaError:
    """Any failure while decoding, as a MediaError: third-party decoders raise anything on hostile bytes."""
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, MemoryError):
        return MediaError("too_large", "not enough memory to decode this input")
    return MediaError("corrupt", f"could not decode: {type(exc).__name__}: {exc}")
