"""Images decode upright to RGB uint8 from every supported format and mode; damaged ones are refused."""

from __future__ import annotations

import csv
import struct
import zlib

import numpy as np
import pytest

from detector.config import Limits
from detector.media import ImageMedia, MediaError, MediaInput, decode

from conftest import gradient_image


def _decode_image(path, limits: Limits = Limits()) -> ImageMedia:
    media = decode(MediaInput.from_path(path), limits)
    assert isinstance(media, ImageMedia)
    assert media.rgb.dtype == np.uint8 and media.rgb.ndim == 3 and media.rgb.shape[2] == 3
    return media


@pytest.mark.parametrize("name", ["bmp", "webp", "png"])
def test_lossless_formats_round_trip_exactly(sample_media, name):
    assert np.array_equal(_decode_image(sample_media[name]).rgb, gradient_image())


@pytest.mark.parametrize("name, tolerance", [("jpeg", 4), ("jpeg_cmyk", 8), ("png_palette", 12), ("gif", 12)])
def test_lossy_and_converted_formats_stay_close(sample_media, name, tolerance):
    rgb = _decode_image(sample_media[name]).rgb.astype(int)
    assert np.abs(rgb - gradient_image()).mean() < tolerance


def test_gif_gives_its_first_frame(sample_media):
    rgb = _decode_image(sample_media["gif"]).rgb.astype(int)
    # The second frame is the inverse of the first.
    assert np.abs(rgb - gradient_image()).mean() < np.abs(rgb - (255 - gradient_image())).mean()


def test_exif_orientation_is_applied(sample_media):
    rgb = _decode_image(sample_media["jpeg_exif_rotated"]).rgb.astype(int)
    # Stored 60 wide x 40 high; orientation 6 turns it 90 degrees clockwise: the left column becomes the top row.
    assert rgb.shape == (60, 40, 3)
    stored = gradient_image()
    assert np.abs(rgb - np.rot90(stored, k=-1)).mean() < 4


def test_alpha_is_composited_on_white(sample_media):
    rgb = _decode_image(sample_media["png_rgba"]).rgb
    assert (rgb[:, :30] == 255).all()                  # transparent half
    assert np.array_equal(rgb[:, 30:], gradient_image()[:, 30:])


def test_grey_modes_become_three_equal_channels(sample_media):
    grey = _decode_image(sample_media["png_grey"]).rgb
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    deep = _decode_image(sample_media["png_grey16"]).rgb
    expected = (np.arange(40 * 60, dtype=np.int64).reshape(40, 60) * 27) >> 8
    assert np.array_equal(deep[..., 0], expected.astype(np.uint8))


def test_dev_face_jpegs_decode(dev_data):
    with open(dev_data / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["modality"] == "face"]
    for row in rows[:: max(1, len(rows) // 6)][:6]:
        media = _decode_image(dev_data / row["path"])
        assert min(media.rgb.shape[:2]) >= 16
        assert media.rgb.std() > 1                      # real picture content, not a flat fill


@pytest.mark.parametrize("name", ["jpeg", "png"])
def test_truncated_image_is_refused_as_truncated(sample_media, name):
    data = sample_media[name].read_bytes()
    cut = data[: len(data) * 2 // 3] if name == "jpeg" else data[: len(data) - 40]
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_bytes(cut), Limits())
    assert error.value.code == "truncated"


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000)))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (20_000, 10_000)])
def test_decompression_bomb_is_refused_from_the_header(width, height):
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_bytes(_png_declaring(width, height)), Limits(max_pixels=64_000_000))
    assert error.value.code == "too_large"


def test_pixel_limit_applies_to_ordinary_images(sample_media):
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_path(sample_media["png"]), Limits(max_pixels=1000))
    assert error.value.code == "too_large"
    assert "60x40" in error.value.message
