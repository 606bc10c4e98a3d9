"""Opening audio/video containers with PyAV, and turning FFmpeg's errors into MediaErrors a person can read."""

from __future__ import annotations

import io
from pathlib import Path

import av

from detector.media.errors import MediaError


def open_container(source: Path | bytes) -> av.container.InputContainer:
    """Open a file or in-memory bytes for reading; badly encoded metadata (e.g. GBK titles) must not stop decoding."""
    handle = str(source) if isinstance(source, Path) else io.BytesIO(source)
    return av.open(handle, mode="r", metadata_errors="replace")


def container_error(exc: av.FFmpegError, what: str) -> MediaError:
    """MediaError for an FFmpeg failure while reading `what` (e.g. "MP4 video")."""
    if isinstance(exc, av.error.EOFError):
        return MediaError("truncated", f"{what} ends early: the file is truncated or incomplete")
    if isinstance(exc, av.error.InvalidDataError):
        return MediaError("corrupt", f"{what} is damaged: FFmpeg found invalid data")
    if isinstance(exc, (av.error.DecoderNotFoundError, av.error.PatchWelcomeError, av.error.DemuxerNotFoundError)):
        return MediaError("unsupported", f"{what} uses a codec or feature that cannot be decoded here")
    return MediaError("corrupt", f"{what} could not be read: {exc.strerror or exc}")
