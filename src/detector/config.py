"""Run-time configuration: input limits, verdict thresholds and engine settings, with safe defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_models_dir() -> Path:
    """`DETECTOR_MODELS_DIR`, else the repository's `models/`."""
    return Path(os.environ.get("DETECTOR_MODELS_DIR", PROJECT_ROOT / "models"))


@dataclass(frozen=True)
class Limits:
    """Hard bounds on what one input may cost. Anything over a bound is refused with a clear reason."""

    max_bytes: int = 512 * 1024 * 1024          # raw file size
    max_pixels: int = 64_000_000                # decompression-bomb guard, per image or frame
    max_video_seconds: float = 4 * 3600.0
    max_audio_seconds: float = 3 * 3600.0
    max_text_chars: int = 2_000_000
    video_frames: int = 32                      # frames sampled evenly per video


@dataclass(frozen=True)
class EngineConfig:
    batch_size: int = 16
    device: str = "auto"                        # auto | cpu | cuda
    threads: int = max(1, min(4, os.cpu_count() or 1))
    prefetch_workers: int = 2                   # decode/preprocess threads running ahead of the model
    explain: bool = False                       # heatmaps / per-unit evidence on request


@dataclass(frozen=True)
class ScanConfig:
    limits: Limits = field(default_factory=Limits)
    engine: EngineConfig = field(default_factory=EngineConfig)
    models_dir: Path = field(default_factory=default_models_dir)
    # Verdict thresholds override the per-model ones shipped in models/<name>/calibration.json.
    synthetic_threshold: float | None = None
    authentic_threshold: float | None = None
    detect: bool = True         # False: decode, provenance and hooks (hash banks) only, no model loaded
