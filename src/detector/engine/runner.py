"""The batched inference engine.

Items are prepared (decoded, preprocessed) in worker threads running ahead of the model; their units are grouped per
detector into batches of up to `batch_size`, run once under inference mode (autocast + channels_last on CUDA), and
scattered back. An item may need several detectors (a video's faces and its soundtrack); it is summarized as soon as
all its units are scored. Failures stay with their item or batch.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch

from ..config import EngineConfig
from .interface import Detector, Finding, NotApplicable, Prepared

BatchObserver = Callable[[str, int, float], None]      # (detector name, batch size, seconds)


@dataclass
class Job:
    """What `prepare` returns for one item. Without a detector or side work the item needs no model work."""

    meta: Any                                     # the caller's per-item state, passed through untouched
    detector: Detector | None = None
    prepared: Prepared | None = None
    # more models on the same item, by name (a video's soundtrack): batched with other items' units of that model
    side: dict[str, tuple[Detector, Prepared]] = field(default_factory=dict)

    def parts(self) -> list[tuple[str | None, Detector, Prepared]]:
        """(name, detector, prepared) per model to run; the main one is named None."""
        main = [(None, self.detector, self.prepared)] if self.detector and self.prepared is not None else []
        return main + [(name, detector, prepared) for name, (detector, prepared) in self.side.items()]


Outcome = Finding | NotApplicable | Exception


@dataclass
class Done:
    index: int
    meta: Any
    outcome: Outcome | None                       # the main detector's
    side: dict[str, Outcome] = field(default_factory=dict)


@dataclass
class _Pending:
    index: int
    job: Job
    parts: list[tuple[str | None, Detector, Prepared]]
    outputs: list[list[torch.Tensor | None]]      # per part, per unit
    remaining: int                                # units of all parts not yet scored
    failed: dict[int, Exception] = field(default_factory=dict)     # part index -> its failed batch's error


def keep_freed_memory() -> None:
    """Stop glibc from returning large freed blocks to the OS after every batch.

    Batched activations are tens of MB; by default each one is mmapped and unmapped per forward pass, and the page
    faults cost more than batching saves (measured: batch 16 went from 0.5x to 1.1x of one-at-a-time on CPU).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)      # glibc's maximum on 64-bit
        libc.mallopt(m_trim_threshold, 1024 * 1024 * 1024)
        libc.mallopt(m_top_pad, 256 * 1024 * 1024)
    except (OSError, AttributeError):                          # not glibc: nothing to tune
        pass


def select_device(preference: str = "auto") -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but no CUDA device is available")
    if preference in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


class Engine:
    def __init__(self, config: EngineConfig | None = None, observer: BatchObserver | None = None):
        self.config = config or EngineConfig()
        self.device = select_device(self.config.device)
        self.observer = observer
        torch.set_num_threads(self.config.threads)
        if self.device.type == "cpu":
            keep_freed_memory()

    def run(self, items: Iterable[Any], prepare: Callable[[Any], Job]) -> Iterator[Done]:
        """Yield one Done per item, in completion order (callers reorder by `index`)."""
        workers = max(1, self.config.prefetch_workers)
        window = max(2 * workers, self.config.batch_size)
        queues: dict[str, deque[tuple[_Pending, int, int, Any]]] = {}   # (item, part, unit index, unit)
        detectors: dict[str, Detector] = {}
        with ThreadPoolExecutor(workers, thread_name_prefix="prepare") as pool:
            futures: deque[tuple[int, Future]] = deque()
            source = iter(enumerate(items))

            def refill() -> None:
                while len(futures) < window:
                    nxt = next(source, None)
                    if nxt is None:
                        return
                    futures.append((nxt[0], pool.submit(prepare, nxt[1])))

            refill()
            while futures:
                index, future = futures.popleft()
                refill()
                try:
                    job = future.result()
                except Exception as exc:               # prepare must not take the batch down
                    yield Done(index, None, exc)
                    continue
                parts = job.parts()
                if not parts:
                    yield Done(index, job.meta, None)
                    continue
                pending = _Pending(index, job, parts, [[None] * len(p.units) for _, _, p in parts],
                                   sum(len(p.units) for _, _, p in parts))
                if pending.remaining == 0:
                    yield self._summarize(pending)
                    continue
                for part, (_, detector, prepared) in enumerate(parts):
                    detectors[detector.name] = detector
                    queue = queues.setdefault(detector.name, deque())
                    queue.extend((pending, part, i, unit) for i, unit in enumerate(prepared.units))
                    while len(queue) >= self.config.batch_size:
                        yield from self._run_batch(detector, queue)
            for name, queue in queues.items():
                while queue:
                    yield from self._run_batch(detectors[name], queue)

    def _run_batch(self, detector: Detector, queue: deque) -> Iterator[Done]:
        slots = [queue.popleft() for _ in range(min(self.config.batch_size, len(queue)))]
        started = time.perf_counter()
        try:
            outputs = self.forward(detector, [unit for _, _, _, unit in slots])
        except Exception as exc:                       # a failed batch fails only its own items' parts
            outputs = None
            for pending, part, _, _ in slots:
                pending.failed[part] = exc
        if self.observer is not None:
            self.observer(detector.name, len(slots), time.perf_counter() - started)
        for row, (pending, part, unit_index, _) in enumerate(slots):
            if outputs is not None:
                pending.outputs[part][unit_index] = outputs[row]
            pending.remaining -= 1
            if pending.remaining == 0:
                yield self._summarize(pending)

    def forward(self, detector: Detector, units: list[Any]) -> torch.Tensor:
        batch = detector.collate(units)
        if self.device.type == "cuda" and isinstance(batch, torch.Tensor):
            batch = pad_rows(batch, self.config.batch_size)
        batch = _to_device(batch, self.device, detector.channels_last)
        with torch.inference_mode(), self._autocast():
            return detector.forward(batch).float().cpu()[: len(units)]

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def _summarize(self, pending: _Pending) -> Done:
        outcomes: dict[str | None, Outcome] = {}
        for part, (name, detector, prepared) in enumerate(pending.parts):
            if part in pending.failed:
                outcomes[name] = pending.failed[part]
                continue
            try:
                outcomes[name] = detector.summarize(prepared, pending.outputs[part], self.config.explain)
            except Exception as exc:
                outcomes[name] = exc
        main = outcomes.pop(None, None)
        return Done(pending.index, pending.job.meta, main, outcomes)


def pad_rows(batch: torch.Tensor, rows: int) -> torch.Tensor:
    """`batch` with zero rows appended up to `rows`, so that a detector sees one batch shape on the GPU: there the
    first batch of each new size cost about 2 s (kernel selection per input shape; benchmarks/face.py on an H200)."""
    missing = rows - batch.shape[0]
    return torch.cat([batch, batch.new_zeros((missing, *batch.shape[1:]))]) if missing > 0 else batch


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and device.type == "cuda" and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: _to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device, channels_last) for v in batch)
    return batch
