"""scan(inputs) -> results: the one path every caller (CLI, service, evaluation) takes.

decode -> provenance.inspect -> detector.preprocess -> engine (batch, model) -> calibrate -> report.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

from . import provenance
from .config import ScanConfig
from .engine import registry
from .engine.interface import Detector, Finding, NotApplicable, Prepared
from .engine.runner import Done, Engine, Job
from .media import SNIFF_BYTES, MediaError, MediaInput, decode, read_bytes, sniff
from .media.types import DecodedMedia, VideoMedia
from .report import ScanResult


class ResultHook(Protocol):
    """Extra per-item work on the same pass (e.g. hash-bank matching): `inspect` runs in the prepare threads with the
    raw bytes and decoded media, `apply` annotates the finished result."""

    def inspect(self, data: bytes, media: DecodedMedia | None) -> Any: ...

    def apply(self, result: ScanResult, inspected: Any) -> None: ...


@dataclass
class _ItemState:
    source: MediaInput
    started: float
    modality: str | None = None
    sha256: str | None = None
    findings: dict = field(default_factory=dict)
    hooked: list = field(default_factory=list)          # one `inspect` value per hook
    detector: Detector | None = None
    result: ScanResult | None = None           # set when the item is finished before reaching a model
    side: dict[str, tuple[Detector, Prepared]] = field(default_factory=dict)   # more models on the item
    side_reports: dict[str, dict] = field(default_factory=dict)    # side parts settled without a model


class Scanner:
    """Holds the engine (device, threads, loaded models) so repeated scans reuse it."""

    def __init__(self, config: ScanConfig | None = None, engine: Engine | None = None,
                 hooks: Iterable[ResultHook] = ()):
        self.config = config or ScanConfig()
        self.engine = engine or Engine(self.config.engine)
        self.hooks = list(hooks)

    def scan(self, inputs: Iterable[MediaInput | str | Path]) -> list[ScanResult]:
        return list(self.scan_iter(inputs))

    def scan_iter(self, inputs: Iterable[MediaInput | str | Path]) -> Iterator[ScanResult]:
        """Results in input order, each yielded as soon as it and all before it are done."""
        items = (_as_input(x) for x in inputs)
        ready: dict[int, ScanResult] = {}
        next_index = 0
        for done in self.engine.run(items, self._prepare):
            ready[done.index] = self._finish(done)
            while next_index in ready:
                yield ready.pop(next_index)
                next_index += 1

    def _prepare(self, source: MediaInput) -> Job:
        state = _ItemState(source=source, started=time.perf_counter())
        try:
            return self._prepare_state(state)
        except Exception as exc:  # noqa: BLE001 - a model that fails to load or a detector bug: this item only
            state.result = self._result(state, None, error=f"internal error: {exc!r}")
            return Job(meta=state)

    def _prepare_state(self, state: _ItemState) -> Job:
        source, limits = state.source, self.config.limits
        try:
            data = read_bytes(source, limits)
            state.sha256 = hashlib.sha256(data).hexdigest()
            # a container is probed from its file, or from all its bytes (its index may sit at the end)
            sniffed = sniff(data[:SNIFF_BYTES], source.path) if source.path else sniff(data)
            state.modality = sniffed.modality
        except MediaError as exc:
            state.result = self._error(state, exc)
            return Job(meta=state)
        media: DecodedMedia | None = None
        try:
            # decode the bytes already read (hashing and provenance need them) instead of reading the file again
            media = decode(MediaInput(source.source, data=data) if source.path else source, limits, sniffed)
            state.modality = media.modality     # the full decode knows better than a probe of the first bytes
        except MediaError as exc:
            state.result = self._error(state, exc)
        state.findings = provenance.inspect(data, sniffed.format, media)
        state.hooked = [hook.inspect(data, media) for hook in self.hooks]
        if media is None:
            return Job(meta=state)
        if isinstance(media, VideoMedia):
            self._prepare_soundtrack(state, media)
        detector = self._detector_for(media.modality)
        if isinstance(detector, NotApplicable):
            state.result = self._result(state, detector)
            return Job(meta=state, side=state.side)
        state.detector = detector
        prepared = detector.preprocess(media)
        if isinstance(prepared, NotApplicable):
            state.result = self._result(state, prepared)
            return Job(meta=state, side=state.side)
        return Job(meta=state, detector=detector, prepared=prepared, side=state.side)

    def _detector_for(self, modality: str) -> Detector | NotApplicable:
        """The loaded detector registered for `modality`, or why there is none (none registered, no weights)."""
        if not self.config.detect:
            return NotApplicable("detection was off: only hash banks and provenance were checked")
        spec = registry.for_modality(modality)
        if spec is None:
            return NotApplicable(f"no detector is registered for {modality}")
        return registry.load(spec, self.config.models_dir, self.engine.device)

    def _prepare_soundtrack(self, state: _ItemState, video: VideoMedia) -> None:
        """A video's soundtrack goes to the audio detector too; its finding is reported in the video's evidence."""
        if video.soundtrack_error is not None:
            state.side_reports["soundtrack"] = {"verdict": "error", "reason": video.soundtrack_error}
            return
        if video.soundtrack is None:
            state.side_reports["soundtrack"] = {"verdict": "not_applicable", "reason": "the video has no audio stream"}
            return
        detector = self._detector_for("audio")
        if isinstance(detector, NotApplicable):
            state.side_reports["soundtrack"] = {"verdict": "not_applicable", "reason": detector.reason}
            return
        prepared = detector.preprocess(video.soundtrack)
        if isinstance(prepared, NotApplicable):
            state.side_reports["soundtrack"] = _report(self._result(state, prepared, detector=detector))
            return
        state.side["soundtrack"] = (detector, prepared)

    def _finish(self, done: Done) -> ScanResult:
        state: _ItemState = done.meta          # `_prepare` never raises: its failures are in state.result
        if state.result is not None:
            result = state.result
        else:
            result = self._result(state, done.outcome)
        for name, outcome in done.side.items():
            state.side_reports[name] = _report(self._result(state, outcome, detector=state.side[name][0]))
        result.evidence.update(state.side_reports)
        if state.findings:
            result.provenance = provenance.decide(state.findings, result.score,
                                                  result.verdict if result.score is not None else None,
                                                  declared_ai=state.source.declared_ai)
        for hook, inspected in zip(self.hooks, state.hooked):
            hook.apply(result, inspected)
        result.elapsed_ms = round((time.perf_counter() - state.started) * 1000, 2)
        return result

    def _result(self, state: _ItemState, outcome: Finding | NotApplicable | Exception | None,
                error: str | None = None, detector: Detector | None = None) -> ScanResult:
        """The result of `outcome` from `detector` (the item's own by default)."""
        detector = detector or state.detector
        model = detector.identity() if detector else None
        result = ScanResult(path=state.source.source, modality=state.modality, verdict="error",
                            model=model, sha256=state.sha256)
        if isinstance(outcome, Exception):
            error = f"detector failed: {outcome!r}"
        if error is not None:
            result.reason, result.error_code = error, "internal"
        elif isinstance(outcome, NotApplicable):
            result.verdict, result.reason, result.evidence = "not_applicable", outcome.reason, outcome.evidence
        elif isinstance(outcome, Finding):
            result.score = round(float(outcome.score), 6)
            calibration = outcome.calibration or detector.calibration
            result.verdict = (calibration.verdict(result.score, self.config.synthetic_threshold,
                                                  self.config.authentic_threshold)
                              if outcome.confident else "uncertain")
            result.reason, result.evidence = outcome.reason, outcome.evidence
        return result

    def _error(self, state: _ItemState, exc: MediaError) -> ScanResult:
        result = self._result(state, None, error=exc.message)
        result.error_code = exc.code
        return result


def scan(inputs: Iterable[MediaInput | str | Path], config: ScanConfig | None = None) -> list[ScanResult]:
    return Scanner(config).scan(inputs)


def _report(result: ScanResult) -> dict:
    """A side part's result as it appears in the item's evidence: what a result says about the content."""
    return {"verdict": result.verdict, "score": result.score, "reason": result.reason, "model": result.model,
            "evidence": result.evidence}


def _as_input(item: MediaInput | str | Path) -> MediaInput:
    return item if isinstance(item, MediaInput) else MediaInput.from_path(item)
