"""The running service the service and web page tests share: one real `detector serve` process per test session,
on a free loopback port, with its own SQLite database, spool folder and BentoML home. (No tests here.)"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil
import soundfile
from conftest import write_video
from PIL import Image

from detector.config import PROJECT_ROOT

STARTUP_SECONDS = 240
# Small limits so the refusals are cheap to provoke.
MAX_UPLOAD_BYTES = 600_000
MAX_BATCH_FILES = 8
SYNC_AUDIO_SECONDS = 4.0


@dataclass
class RunningService:
    url: str
    env: dict[str, str]
    database_url: str
    process: subprocess.Popen
    log_path: Path
    keys: dict[str, dict]                # tenant -> {"key", "webhook_secret"}

    def client(self, tenant: str | None = "acme", **kwargs) -> httpx.Client:
        headers = {"X-API-Key": self.keys[tenant]["key"]} if tenant else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kwargs)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """The service's commands (`detector keys|logs|serve`) against this service's database."""
        return subprocess.run([sys.executable, "-m", "detector.server", *args], env=self.env, capture_output=True,
                              text=True, timeout=120, cwd=PROJECT_ROOT)

    def service_pid(self, name: str) -> int:
        """The process of one of the BentoML services (detector-scan-worker, detector-jobs)."""
        for child in psutil.Process(self.process.pid).children(recursive=True):
            if f"--service-name {name} " in " ".join(child.cmdline()):
                return child.pid
        raise LookupError(f"no {name} process")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


_SERVICE: RunningService | None = None


def running_service(tmp_root: Path) -> RunningService:
    """Start the service once per session (both test modules ask for it)."""
    global _SERVICE
    if _SERVICE is None:
        _SERVICE = _start(tmp_root)
    return _SERVICE


def stop_service() -> None:
    global _SERVICE
    if _SERVICE is not None:
        _SERVICE.process.send_signal(signal.SIGTERM)
        try:
            _SERVICE.process.wait(30)
        except subprocess.TimeoutExpired:
            _SERVICE.process.kill()
        _SERVICE = None


def _start(root: Path) -> RunningService:
    port = _free_port()
    database_url = f"sqlite:///{root / 'service.db'}"
    env = {**os.environ, "DETECTOR_DATABASE_URL": database_url, "DETECTOR_SPOOL_DIR": str(root / "spool"),
           "BENTOML_HOME": str(root / "bentoml"), "BENTOML_DO_NOT_TRACK": "true",
           "DETECTOR_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES), "DETECTOR_MAX_BATCH_FILES": str(MAX_BATCH_FILES),
           "DETECTOR_SYNC_AUDIO_SECONDS": str(SYNC_AUDIO_SECONDS), "DETECTOR_WEBHOOK_BACKOFF": "0.2",
           "DETECTOR_TORCH_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    service = RunningService(url=f"http://127.0.0.1:{port}", env=env, database_url=database_url, process=None,
                             log_path=root / "serve.log", keys={})
    for tenant, extra in [("acme", []), ("slow", ["--rate", "0.2", "--burst", "2"]),
                          ("scan-only", ["--scope", "scan"]), ("revoked", [])]:
        created = service.cli("keys", "create", tenant, "--json", *extra)
        assert created.returncode == 0, created.stderr
        service.keys[tenant] = json.loads(created.stdout)
    assert service.cli("keys", "revoke", "revoked").returncode == 0
    log = service.log_path.open("w")
    service.process = subprocess.Popen([sys.executable, "-m", "detector.server", "serve", "--port", str(port)],
                                       env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"detector serve exited with {service.process.returncode}:\n{service.log_tail()}")
        try:
            if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                return service
        except httpx.HTTPError:
            pass
        time.sleep(1)
    service.process.kill()
    raise RuntimeError(f"detector serve was not ready within {STARTUP_SECONDS} s:\n{service.log_tail()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- small real inputs ------------------------------------------------------------------------------------------

def png_bytes(size: int = 96, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def gradient_png(size: int) -> bytes:
    """A large smooth image: a small file that takes the scanner seconds to decode and inspect."""
    y, x = np.mgrid[0:size, 0:size]
    pixels = np.stack([x * 255 // size, y * 255 // size, (x + y) * 255 // (2 * size)], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def wav_bytes(seconds: float, rate: int = 16_000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    buffer = io.BytesIO()
    soundfile.write(buffer, tone.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def mp4_bytes(frames: int = 12) -> bytes:
    buffer = io.BytesIO()
    write_video(None, "mpeg4", "mp4", frames=frames, target=buffer,
                draw=lambda index, width, height: np.full((height, width, 3), 10 * index, np.uint8))
    return buffer.getvalue()


# ---- comparing results ------------------------------------------------------------------------------------------

def comparable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "elapsed_ms"}


def same_result(got, want) -> bool:
    """Equal, floats within 1e-4: batches of different makeup sum in a different order."""
    if isinstance(want, float) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-4)
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(same_result(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(same_result(g, w) for g, w in zip(got, want))
    return got == want
