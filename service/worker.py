"""The model service: one batchable BentoML API over detector.scan.Scanner.

Concurrent requests from the gateway (each carrying one or more items) are merged by BentoML's adaptive batcher into
one call of up to `max_batch_size` items; the Scanner then batches their model units per detector.
"""

from __future__ import annotations

import json

import bentoml
import pydantic
import torch

from detector.config import EngineConfig, ScanConfig
from detector.engine import registry
from detector.engine.runner import Engine
from detector.media import MediaInput
from detector.records.api import Records, open_records
from detector.scan import Scanner

from .settings import SETTINGS

MODEL_BATCH_SIZE = bentoml.metrics.Histogram(
    name="detector_model_batch_size",
    documentation="Units per model forward pass, per detector",
    labelnames=["detector"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
MODEL_BATCH_SECONDS = bentoml.metrics.Histogram(
    name="detector_model_batch_seconds",
    documentation="Seconds per model forward pass, per detector",
    labelnames=["detector"],
)


class ScanItem(pydantic.BaseModel):
    """One input: bytes of a file, or text."""

    name: str
    data: bytes | None = None
    text: str | None = None
    declared_ai: bool = False
    explain: bool = False                # heatmaps, segments and spans for the moderator page


def _observe_batch(detector: str, size: int, seconds: float) -> None:
    MODEL_BATCH_SIZE.labels(detector=detector).observe(size)
    MODEL_BATCH_SECONDS.labels(detector=detector).observe(seconds)


def _scanner(explain: bool, records: Records) -> Scanner:
    """Like `detector scan`: hash-bank matches and the consent registry on every result."""
    config = ScanConfig(engine=EngineConfig(batch_size=SETTINGS.max_batch_size, threads=SETTINGS.torch_threads,
                                            explain=explain))
    return Scanner(config, engine=Engine(config.engine, observer=_observe_batch),
                   hooks=records.scan_hooks())


@bentoml.service(
    name="detector-scan-worker",
    workers=1,
    threads=1,                                      # one Scanner call at a time: the batcher feeds it
    traffic={"timeout": 300},
    # The gateway's client to this service recycles its connection pool after max_requests calls, which drops
    # in-flight calls under load; keep the pool for the life of the process.
    runner_connection={"max_requests": 1_000_000_000, "max_age": 1e9},
    logging={"access": {"enabled": False}},         # internal calls; the gateway logs every request
)
class ScanWorker:
    def __init__(self) -> None:
        torch.set_num_threads(SETTINGS.torch_threads)
        records = open_records(SETTINGS.database_url)
        self.scanners = {explain: _scanner(explain, records) for explain in (False, True)}
        plain = self.scanners[False]
        # Load every installed detector now, so the first requests do not pay for it.
        for spec in registry.specs():
            registry.load(spec, plain.config.models_dir, plain.engine.device)

    @bentoml.api(batchable=SETTINGS.batching, max_batch_size=SETTINGS.max_batch_size,
                 max_latency_ms=SETTINGS.max_latency_ms)
    def scan(self, items: list[ScanItem]) -> list[dict]:
        """ScanResult dicts (the `detector scan --json` contract), in item order."""
        results: list[dict | None] = [None] * len(items)
        for explain, scanner in self.scanners.items():
            chosen = [i for i, item in enumerate(items) if item.explain == explain]
            if not chosen:
                continue
            inputs = [_as_input(items[i]) for i in chosen]
            for index, result in zip(chosen, scanner.scan(inputs)):
                results[index] = json.loads(result.to_json())     # exactly the CLI's JSON
        return results

    @bentoml.api
    def models(self) -> list[dict]:
        """Registered detectors, their versions and whether weights are installed."""
        return registry.status(self.scanners[False].config.models_dir)


def _as_input(item: ScanItem) -> MediaInput:
    if item.text is not None:
        source = MediaInput.from_text(item.text, item.name)
    else:
        source = MediaInput.from_bytes(item.data or b"", item.name)
    source.declared_ai = item.declared_ai
    return source
