"""Media decoding: sniff what an input is from its bytes, then decode it to arrays or text within hard limits.

Every failure is a MediaError with a code and a message for a person; nothing else escapes `decode`.
"""

from __future__ import annotations

import stat
from pathlib import Path

from detector.config import Limits
from detector.media.audio import decode_audio
from detector.media.errors import ErrorCode, MediaError, decoding_error
from detector.media.image import decode_image
from detector.media.pdf import decode_pdf
from detector.media.sniff import SNIFF_BYTES, sniff
from detector.media.text import decode_html, decode_text, text_media
from detector.media.types import (
    AUDIO_RATE,
    AudioMedia,
    DecodedMedia,
    ImageMedia,
    MediaInput,
    Modality,
    Sniffed,
    TextMedia,
    VideoMedia,
)
from detector.media.video import decode_video

__all__ = [
    "AUDIO_RATE", "SNIFF_BYTES", "AudioMedia", "DecodedMedia", "ErrorCode", "ImageMedia", "MediaError", "MediaInput",
    "Modality", "Sniffed", "TextMedia", "VideoMedia", "decode", "read_bytes", "read_head", "sniff",
]

# UTF-8 spends at most 4 bytes per character: a larger file is over the text limit whatever it holds.
_MAX_UTF8_BYTES_PER_CHAR = 4


def read_bytes(inp: MediaInput, limits: Limits) -> bytes:
    """All bytes of an input (UTF-8 for direct text), refusing an over-size file before reading it."""
    if inp.text is not None:
        return inp.text.encode("utf-8")
    if inp.data is not None:
        _check_size(len(inp.data), limits)
        return inp.data
    path = _input_path(inp)
    _check_size(_file_size(path), limits)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def read_head(inp: MediaInput, limits: Limits, size: int = SNIFF_BYTES) -> bytes:
    """The first `size` bytes of a path or bytes input, after the same checks as `read_bytes`."""
    if inp.text is not None or inp.data is not None:
        return read_bytes(inp, limits)[:size]
    path = _input_path(inp)
    _check_size(_file_size(path), limits)
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def decode(inp: MediaInput, limits: Limits, sniffed: Sniffed | None = None) -> DecodedMedia:
    """Decode one input to ImageMedia, VideoMedia, AudioMedia or TextMedia. Raises only MediaError.

    `sniffed` is what a caller already learnt from `sniff` on the same content; passing it skips a second probe.
    """
    try:
        return _decode(inp, limits, sniffed)
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - third-party decoders raise anything on hostile bytes
        raise decoding_error(exc) from exc


def _decode(inp: MediaInput, limits: Limits, kind: Sniffed | None) -> DecodedMedia:
    if inp.text is not None:
        return text_media(inp.text, "direct", limits)
    source: Path | bytes
    if inp.data is not None:
        source = read_bytes(inp, limits)
        kind = kind or sniff(source)
    else:
        source = _input_path(inp)
        kind = kind or sniff(read_head(inp, limits), source)

    if kind.format == "pdf":
        return decode_pdf(source, limits)
    if kind.modality == "image":
        return decode_image(source, kind.format, limits)
    if kind.modality == "video":
        return decode_video(source, kind.format, limits)
    if kind.modality == "audio":
        return decode_audio(source, kind.format, limits)
    if isinstance(source, Path) and _file_size(source) > _MAX_UTF8_BYTES_PER_CHAR * limits.max_text_chars:
        raise MediaError("too_large", f"text file is over the limit of {limits.max_text_chars:,} characters")
    if kind.details.get("markup") == "html":
        return decode_html(read_bytes(inp, limits), limits)
    return decode_text(read_bytes(inp, limits), limits)


def _input_path(inp: MediaInput) -> Path:
    if inp.path is None:
        raise MediaError("unreadable", f"{inp.source}: the input has no path, bytes or text")
    return inp.path


def _file_size(path: Path) -> int:
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise MediaError("unreadable", f"{path}: no such file") from exc
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if stat.S_ISDIR(info.st_mode):
        raise MediaError("unreadable", f"{path}: is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise MediaError("unreadable", f"{path}: not a regular file")
    return info.st_size


def _check_size(size: int, limits: Limits) -> None:
    if size == 0:
        raise MediaError("empty", "the input has zero bytes")
    if size > limits.max_bytes:
        raise MediaError("too_large", f"input is {size:,} bytes, over the limit of {limits.max_bytes:,}")


def _unreadable(path: Path, exc: OSError) -> MediaError:
    if isinstance(exc, PermissionError):
        return MediaError("unreadable", f"{path}: permission denied")
    if isinstance(exc, IsADirectoryError):
        return MediaError("unreadable", f"{path}: is a directory, not a file")
    return MediaError("unreadable", f"{path}: cannot be read ({exc.strerror or exc})")
