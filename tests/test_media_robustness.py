"""Hostile and broken inputs: every case decodes or raises MediaError with a message; nothing else escapes."""

from __future__ import annotations

import io
import os
import random

import numpy as np
import pytest
from PIL import Image

from detector.config import Limits
from detector.media import (
    AudioMedia,
    ImageMedia,
    MediaError,
    MediaInput,
    TextMedia,
    VideoMedia,
    decode,
    read_bytes,
)

FUZZED = ["jpeg", "png", "gif", "webp", "bmp", "mp4_h264", "mkv", "webm", "avi", "mpeg_ts", "wav_24bit_stereo", "flac",
          "ogg_vorbis", "mp3", "m4a", "opus", "text_utf8", "text_gb18030"]
ERROR_CODES = {"empty", "truncated", "corrupt", "unsupported", "too_large", "unreadable"}


def _decode_or_media_error(data: bytes, limits: Limits = Limits()) -> str:
    """'ok' after checking the decoded invariants, else the MediaError code. Any other exception fails the test."""
    try:
        media = decode(MediaInput.from_bytes(data, name="fuzzed"), limits)
    except MediaError as error:
        assert error.code in ERROR_CODES
        assert error.message and isinstance(error.message, str)
        return error.code
    if isinstance(media, ImageMedia):
        assert media.rgb.dtype == np.uint8 and media.rgb.ndim == 3 and media.rgb.shape[2] == 3
    elif isinstance(media, VideoMedia):
        assert media.frames and len(media.frames) == len(media.timestamps) <= limits.video_frames
        assert all(frame.dtype == np.uint8 and frame.shape[2] == 3 for frame in media.frames)
    elif isinstance(media, AudioMedia):
        assert media.samples.dtype == np.float32 and media.samples.size > 0
        assert np.isfinite(media.samples).all() and np.abs(media.samples).max() <= 1.0
    else:
        assert isinstance(media, TextMedia) and media.text
    return "ok"


def _damaged_versions(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    length = len(data)
    cuts = sorted({1, 8, 100, length // 4, length // 2, (length * 9) // 10, length - 1})
    versions = [data[:cut] for cut in cuts if 0 < cut < length]
    for flips in (3, 30):
        damaged = bytearray(data)
        for _ in range(flips):
            position = rng.randrange(16, length) if length > 16 else rng.randrange(length)
            damaged[position] = rng.randrange(256)
        versions.append(bytes(damaged))
    block = bytearray(data)
    start = rng.randrange(length // 4, length // 2 + 1)
    block[start:start + 256] = bytes(rng.randrange(256) for _ in range(min(256, length - start)))
    versions.append(bytes(block))
    return versions


@pytest.mark.parametrize("name", FUZZED)
def test_truncated_and_corrupted_files(sample_media, name):
    data = sample_media[name].read_bytes()
    assert _decode_or_media_error(data) == "ok"
    outcomes = [_decode_or_media_error(version) for version in _damaged_versions(data, seed=sum(map(ord, name)))]
    assert set(outcomes) & ERROR_CODES                      # the damage is real: some versions are refused


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_images_missing_pixel_data_never_pass(image_format):
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format=image_format)
    data = buffer.getvalue()
    for fraction in (0.3, 0.6, 0.9, 0.99):
        assert _decode_or_media_error(data[: int(len(data) * fraction)]) == "truncated"


@pytest.mark.parametrize("seed", range(6))
def test_random_garbage(seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=int(rng.integers(1, 50_000)), dtype=np.uint8).tobytes()
    assert _decode_or_media_error(data) in ERROR_CODES


@pytest.mark.parametrize("magic", [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP",
                                   b"RIFF\x00\x00\x00\x00WAVE", b"RIFF\x00\x00\x00\x00AVI ", b"fLaC", b"OggS",
                                   b"\x00\x00\x00\x18ftypisom", b"\x1a\x45\xdf\xa3", b"ID3\x03\x00\x00\x00\x00\x00\x00",
                                   b"\xff\xfb\x90\x00", b"\xff\xf1\x50\x80", b"BM\x00\x00\x00\x00\x00\x00\x00\x00"
                                   b"\x00\x00\x00\x00\x28\x00\x00\x00"])
def test_right_magic_wrong_body(magic):
    rng = np.random.default_rng(len(magic))
    for size in (0, 10, 5000):
        body = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        assert _decode_or_media_error(magic + body) in ERROR_CODES


def test_zero_bytes(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for inp in (MediaInput.from_path(empty), MediaInput.from_bytes(b"")):
        with pytest.raises(MediaError) as error:
            decode(inp, Limits())
        assert error.value.code == "empty"


@pytest.mark.parametrize("name, limits", [
    ("png", Limits(max_bytes=100)),
    ("mp4_h264", Limits(max_bytes=100)),
    ("png", Limits(max_pixels=100)),
    ("mkv", Limits(max_pixels=100)),
    ("mkv", Limits(max_video_seconds=0.5)),
    ("wav_96k", Limits(max_audio_seconds=0.1)),
    ("opus", Limits(max_audio_seconds=0.1)),
    ("text_utf8", Limits(max_text_chars=5)),
])
def test_over_limit_inputs(sample_media, name, limits):
    for inp in (MediaInput.from_path(sample_media[name]), MediaInput.from_bytes(sample_media[name].read_bytes())):
        with pytest.raises(MediaError) as error:
            decode(inp, limits)
        assert error.value.code == "too_large"


def test_unreadable_paths(tmp_path):
    cases = {"missing": tmp_path / "nope.png", "directory": tmp_path}
    for what, path in cases.items():
        for call in (decode, read_bytes):
            with pytest.raises(MediaError) as error:
                call(MediaInput.from_path(path), Limits())
            assert error.value.code == "unreadable", what
            assert str(path) in error.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied(sample_media, tmp_path):
    locked = tmp_path / "locked.png"
    locked.write_bytes(sample_media["png"].read_bytes())
    locked.chmod(0)
    try:
        with pytest.raises(MediaError) as error:
            decode(MediaInput.from_path(locked), Limits())
        assert error.value.code == "unreadable" and "permission denied" in error.value.message
    finally:
        locked.chmod(0o600)


def test_special_files_are_not_read():
    # /dev/zero would never end; it is refused from its stat, not read.
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_path("/dev/zero"), Limits())
    assert error.value.code == "unreadable" and "not a regular file" in error.value.message
