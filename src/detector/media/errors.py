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
