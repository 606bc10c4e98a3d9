"""What goes into decoding (an input) and what comes out (decoded media, one type per modality)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

import numpy as np

Modality = Literal["image", "video", "audio", "text"]
AUDIO_RATE = 16_000


@dataclass
class MediaInput:
    """One thing to scan: a file path, raw bytes, or text given directly (CLI `--text`, stdin, API)."""

    source: str                      # what is reported as `path`
    path: Path | None = None
    data: bytes | None = None
    text: str | None = None
    declared_ai: bool = False        # the uploader declared the content AI-generated (Labeling Measures Art. 6)

    @classmethod
    def from_path(cls, path: str | Path) -> "MediaInput":
        return cls(source=str(path), path=Path(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>") -> "MediaInput":
        return cls(source=name, data=data)

    @classmethod
    def from_text(cls, text: str, name: str = "<text>") -> "MediaInput":
        return cls(source=name, text=text)


@dataclass
class ImageMedia:
    rgb: np.ndarray                  # H x W x 3 uint8, EXIF orientation applied
    format: str                      # jpeg | png | webp | bmp | gif
    modality: Modality = "image"


@dataclass
class AudioMedia:
    samples: np.ndarray              # mono float32 in [-1, 1] at AUDIO_RATE
    duration: float
    original_sample_rate: int
    channels: int
    format: str                      # wav | flac | ogg | mp3 | m4a | aac | opus
    sample_rate: int = AUDIO_RATE
    modality: Modality = "audio"


@dataclass
class VideoMedia:
    frames: list[np.ndarray]         # sampled frames, H x W x 3 uint8
    timestamps: list[float]          # seconds, one per frame
    duration: float
    fps: float
    format: str                      # mp4 | mov | mkv | webm | avi
    soundtrack: AudioMedia | None = None      # the first audio stream, decoded as audio files are
    soundtrack_error: str | None = None       # why a soundtrack that is there could not be decoded
    modality: Modality = "video"


@dataclass
class TextMedia:
    text: str                        # NFKC-normalized, whitespace collapsed
    encoding: str                    # utf-8 | utf-16 | gb18030 | direct | pdf | html (main text of a web page)
    modality: Modality = "text"


DecodedMedia = Union[ImageMedia, VideoMedia, AudioMedia, TextMedia]


@dataclass
class Sniffed:
    """The kind of content as read from its first bytes (and a container probe where needed)."""

    modality: Modality
    format: str
    details: dict = field(default_factory=dict)
