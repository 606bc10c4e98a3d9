"""Service throughput and latency on loopback: requests/s and p50/p99 at 1, 8 and 64 concurrent clients, with
BentoML's adaptive batching on and off, in one run.

By default it starts `detector serve` twice (DETECTOR_BATCHING=on, then off) on free loopback ports, each with a
throw-away database and key, and loads each for --seconds per client count. With --url and --key it measures one
already running service instead. Run by hand:

    .venv/bin/python benchmarks/service.py                      # 20 s per level, image payload
    .venv/bin/python benchmarks/service.py --seconds 60 --clients 64
    .venv/bin/python benchmarks/service.py --file ../shared/data/dev/face/deforgify/real/real_1.jpg
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import aiohttp
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def payload(kind: str, file: Path | None = None) -> tuple[str, Callable[[], dict]]:
    """(endpoint, a function giving aiohttp request arguments) for one request of this kind, or of this file."""
    rng = np.random.default_rng(0)
    if file is not None:
        endpoint, name, data = "/v1/scan", file.name, file.read_bytes()
    elif kind == "text":
        words = rng.choice(["review", "app", "great", "crashes", "update", "love", "slow", "battery", "fix"], 80)
        text = " ".join(words) + "."
        return "/v1/scan/text", lambda: {"json": {"text": text}}
    elif kind == "audio":
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, (0.2 * rng.standard_normal(16_000 * 2)).astype(np.float32), 16_000, format="WAV")
        endpoint, name, data = "/v1/scan/audio", "clip.wav", buffer.getvalue()
    else:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(buffer, format="JPEG", quality=90)
        endpoint, name, data = "/v1/scan/image", "photo.jpg", buffer.getvalue()

    def form() -> dict:
        body = aiohttp.FormData()
        body.add_field("file", data, filename=name)
        return {"data": body}

    return endpoint, form


async def load(url: str, key: str, clients: int, seconds: float, endpoint: str,
               request: Callable[[], dict]) -> dict:
    """`clients` concurrent loops, each sending its next request when the last one is answered.
    (aiohttp, not httpx: httpx's connection pool is the bottleneck itself at 64 concurrent requests.)"""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    timeout = aiohttp.ClientTimeout(total=120)

    async def client(http: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                async with http.post(url + endpoint, **request()) as response:
                    await response.read()
                    outcome = None if response.status == 200 else str(response.status)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                outcome = type(exc).__name__
            if outcome is None:
                latencies.append(time.perf_counter() - started)
            else:
                errors[outcome] = errors.get(outcome, 0) + 1

    async with aiohttp.ClientSession(headers={"X-API-Key": key}, timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=clients)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"clients": clients, "requests": len(latencies), "errors": sum(errors.values()), "error_kinds": errors,
            "seconds": round(elapsed, 1), "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1)}


class Service:
    """`detector serve` with a throw-away database, BentoML home and unlimited key."""

    def __init__(self, batching: bool, workdir: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DETECTOR_BATCHING": "on" if batching else "off",
                    "DETECTOR_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
                    "DETECTOR_SPOOL_DIR": str(workdir / "spool"), "BENTOML_HOME": str(workdir / "bentoml"),
                    "BENTOML_DO_NOT_TRACK": "true", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        created = subprocess.run([sys.executable, "-m", "detector.server", "keys", "create", "bench", "--json",
                                  "--rate", "1000000", "--burst", "1000000"], env=self.env, cwd=ROOT,
                                 capture_output=True, text=True, check=True)
        self.key = json.loads(created.stdout)["key"]
        self.log = (workdir / "serve.log").open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "detector.server", "serve", "--port", str(self.port)],
                                        env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"detector serve exited with {self.process.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(f"not ready after {timeout} s; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_levels(url: str, key: str, label: str, args: argparse.Namespace) -> list[dict]:
    endpoint, request = payload(args.payload, args.file)
    asyncio.run(load(url, key, 8, 3, endpoint, request))                   # warm the path, not measured
    rows = []
    for clients in args.clients:
        row = {"batching": label, **asyncio.run(load(url, key, clients, args.seconds, endpoint, request))}
        print(f"{label:<9}{row['clients']:>8}{row['requests']:>10}{row['errors']:>8}{row['requests_per_s']:>10}"
              f"{row['p50_ms']:>10}{row['p99_ms']:>10}  {row['error_kinds'] or ''}", flush=True)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration per client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--payload", choices=["image", "text", "audio"], default="image")
    parser.add_argument("--file", type=Path, help="send this file instead (e.g. a dev-set face photo or speech clip)")
    parser.add_argument("--url", help="measure this running service instead of starting two")
    parser.add_argument("--key", help="API key for --url")
    parser.add_argument("--output", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()

    print(f"payload={args.file or args.payload}, {args.seconds:g} s per level, loopback")
    print(f"{'batching':<9}{'clients':>8}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    rows: list[dict] = []
    if args.url:
        rows += run_levels(args.url, args.key, "as-is", args)
    else:
        for batching in (True, False):
            with tempfile.TemporaryDirectory(prefix="detector-bench-") as workdir:
                service = Service(batching, Path(workdir))
                try:
                    service.wait_ready()
                    rows += run_levels(service.url, service.key, "on" if batching else "off", args)
                finally:
                    service.stop()
        by = {(r["batching"], r["clients"]): r for r in rows}
        for clients in args.clients:
            on, off = by[("on", clients)], by[("off", clients)]
            if off["requests_per_s"]:
                print(f"{clients} clients: batched/unbatched throughput = "
                      f"{on['requests_per_s'] / off['requests_per_s']:.2f}x")
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
