"""Service settings from the environment, with the embedded defaults `detector serve` uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from detector.config import PROJECT_ROOT, Limits


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class ServiceSettings:
    database_url: str | None            # None: detector.records.db default (SQLite under var/)
    spool_dir: Path                     # uploaded long media waits here until its job runs
    max_upload_bytes: int               # one request body (413 above)
    max_batch_files: int                # items in one /v1/batch request (413 above)
    sync_audio_seconds: float           # longer audio is scanned as a job
    batching: bool                      # adaptive batching of the model API (off only to measure it)
    max_batch_size: int                 # most items the batcher hands the model API at once
    max_latency_ms: int                 # the batcher sheds (503) requests it expects to exceed this
    torch_threads: int
    webhook_attempts: int
    webhook_backoff_seconds: float      # first retry delay; doubles after each failed attempt

    @classmethod
    def from_env(cls) -> "ServiceSettings":
        return cls(
            database_url=os.environ.get("DETECTOR_DATABASE_URL"),
            spool_dir=Path(os.environ.get("DETECTOR_SPOOL_DIR", PROJECT_ROOT / "var" / "spool")),
            max_upload_bytes=_int("DETECTOR_MAX_UPLOAD_BYTES", min(Limits.max_bytes, 200 * 1024 * 1024)),
            max_batch_files=_int("DETECTOR_MAX_BATCH_FILES", 32),
            sync_audio_seconds=_float("DETECTOR_SYNC_AUDIO_SECONDS", 60.0),
            batching=os.environ.get("DETECTOR_BATCHING", "on").lower() not in ("0", "off", "false", "no"),
            max_batch_size=_int("DETECTOR_MAX_BATCH_SIZE", 32),
            max_latency_ms=_int("DETECTOR_MAX_LATENCY_MS", 60_000),
            torch_threads=_int("DETECTOR_TORCH_THREADS", max(1, min(4, os.cpu_count() or 1))),
            webhook_attempts=_int("DETECTOR_WEBHOOK_ATTEMPTS", 5),
            webhook_backoff_seconds=_float("DETECTOR_WEBHOOK_BACKOFF", 1.0),
        )


SETTINGS = ServiceSettings.from_env()
