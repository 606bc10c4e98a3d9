"""Images: JPEG, PNG, WebP, BMP, GIF (first frame) to upright RGB uint8, refusing bombs and truncated files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from detector.config import Limits
from detector.media.errors import MediaError
from detector.media.types import ImageMedia

# A truncated file must be refused, not padded with grey (Pillow's default; stated here because we rely on it).
ImageFile.LOAD_TRUNCATED_IMAGES = False

_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP", "gif": "GIF"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def check_pixels(width: int, height: int, limits: Limits, what: str = "image") -> None:
    """Refuse an image or video frame whose declared size is over the pixel limit (a decompression bomb)."""
    if width * height > limits.max_pixels:
        raise MediaError(
            "too_large",
            f"{what} is {width}x{height} = {width * height:,} pixels, over the limit of {limits.max_pixels:,}",
        )


def decode_image(source: Path | bytes, image_format: str, limits: Limits) -> ImageMedia:
    """Decode the first frame, apply EXIF orientation, composite alpha on white, return H x W x 3 uint8."""
    handle = str(source) if isinstance(source, Path) else io.BytesIO(source)
    try:
        with Image.open(handle, formats=[_PILLOW_FORMATS[image_format]]) as image:
            check_pixels(image.width, image.height, limits)   # header only: nothing decoded yet
            image.load()
            upright = _exif_upright(image)
            rgb = to_rgb_array(upright)
    except Image.DecompressionBombError as exc:
        raise MediaError("too_large", f"image is a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise MediaError("corrupt", f"not a readable {image_format.upper()} image") from exc
    except OSError as exc:
        if "truncated" in str(exc).lower():
            raise MediaError("truncated", f"{image_format.upper()} image is truncated: {exc}") from exc
        raise MediaError("corrupt", f"{image_format.upper()} image is corrupt: {exc}") from exc
    return ImageMedia(rgb=rgb, format=image_format)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any Pillow mode to RGB uint8; 16-bit grey keeps its top 8 bits, transparency becomes white."""
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = (np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = "A" in image.mode or "a" in image.mode or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        image = canvas
    return np.array(image.convert("RGB"), dtype=np.uint8)


def _exif_upright(image: Image.Image) -> Image.Image:
    # Orientation is metadata: a damaged EXIF block leaves the pixels as stored rather than refusing the image.
    try:
        return ImageOps.exif_transpose(image)
    except (ValueError, TypeError, KeyError, SyntaxError, OSError, ZeroDivisionError):
        return image
