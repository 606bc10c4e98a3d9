"""Synthetic-voice detector: speech check, fixed 4 s windows with 50% overlap, LCNN logits, top-half aggregation.

The same window planning (`speech_windows`) and aggregation (`aggregate`) are used by training/voice.py to build
training windows and to calibrate file scores, so what is calibrated is exactly what is served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...engine.bundle import ModelBundle
from ...engine.interface import Detector, Finding, NotApplicable, Prepared
from ...media.audio import finite_samples
from ...media.types import AudioMedia, DecodedMedia
from .activity import SpeechActivity, detect_speech
from .network import SAMPLE_RATE, SpoofNet

WINDOW_SECONDS = 4.0
HOP_SECONDS = 2.0
WINDOW = int(WINDOW_SECONDS * SAMPLE_RATE)
HOP = int(HOP_SECONDS * SAMPLE_RATE)
MAX_WINDOWS = 48                  # per file; longer speech is covered by evenly spaced windows
MIN_ACTIVE_SHARE = 0.2            # windows with less speech than this are not scored (unless none has more)


@dataclass
class SpeechWindows:
    activity: SpeechActivity
    starts: list[int]             # sample offsets of the scored windows
    windows: list[np.ndarray]     # WINDOW samples each
    candidates: int               # windows with speech before the MAX_WINDOWS cap


def _fit_window(segment: np.ndarray) -> np.ndarray:
    """Exactly WINDOW samples: short speech is tiled (repeated), as done in training."""
    if segment.size >= WINDOW:
        return segment[:WINDOW]
    reps = int(np.ceil(WINDOW / max(1, segment.size)))
    return np.tile(segment, reps)[:WINDOW]


def speech_windows(samples: np.ndarray, max_windows: int = MAX_WINDOWS) -> SpeechWindows:
    """Detect speech, then cut the speech span into overlapping windows (evenly subsampled when too many)."""
    samples = finite_samples(np.asarray(samples, dtype=np.float32))
    activity = detect_speech(samples)
    if not activity.present:
        return SpeechWindows(activity, [], [], 0)
    first, last = activity.active_span()
    span = samples[first:last]
    starts = list(range(0, max(1, span.size - WINDOW + 1), HOP))
    if span.size > WINDOW and (span.size - WINDOW) % HOP:
        starts.append(span.size - WINDOW)                      # cover the tail too
    voiced = [s for s in starts if activity.active_fraction(first + s, first + s + WINDOW) >= MIN_ACTIVE_SHARE]
    starts = voiced or starts
    candidates = len(starts)
    if candidates > max_windows:
        picks = np.linspace(0, candidates - 1, max_windows).round().astype(int)
        starts = [starts[i] for i in picks]
    windows = [_fit_window(span[s:s + WINDOW]) for s in starts]
    return SpeechWindows(activity, [first + s for s in starts], windows, candidates)


def aggregate(window_logits: np.ndarray) -> float:
    """File score from window logits: the mean of the top half, so a partly synthetic file is not averaged away
    while a single odd window in a long real recording is."""
    logits = np.sort(np.asarray(window_logits, dtype=np.float64).reshape(-1))[::-1]
    return float(logits[: max(1, int(np.ceil(logits.size / 2)))].mean())


def load_network(bundle: ModelBundle) -> SpoofNet:
    config = bundle.config                                    # the export names the front end's band
    network = SpoofNet(width=int(config.get("width", 12)), bands=int(config["bands"]),
                       max_frequency=float(config["max_frequency"]), members=int(config.get("members", 1)))
    network.load_state_dict(bundle.state_dict())
    return network


class SyntheticVoiceDetector(Detector):
    name = "synthetic-voice"
    modalities = ("audio",)

    def __init__(self, bundle: ModelBundle, device: torch.device):
        super().__init__(bundle, device)
        self.network = load_network(bundle)

    def modules(self) -> list[nn.Module]:
        return [self.network]

    def preprocess(self, media: DecodedMedia) -> Prepared | NotApplicable:
        if not isinstance(media, AudioMedia):
            return NotApplicable(f"synthetic-voice scores audio, not {media.modality}")
        if media.sample_rate != SAMPLE_RATE:
            return NotApplicable(f"expected {SAMPLE_RATE} Hz samples from the decoder, got {media.sample_rate} Hz")
        cut = speech_windows(media.samples)
        activity_evidence = {"speech_seconds": round(cut.activity.speech_seconds, 2),
                             "speech_level_swing_db": round(cut.activity.modulation_db, 1)}
        if not cut.windows:
            return NotApplicable(cut.activity.reason, evidence=activity_evidence)
        units = [torch.from_numpy(np.ascontiguousarray(w)) for w in cut.windows]
        return Prepared(units, {"starts": cut.starts, "candidates": cut.candidates, "activity": activity_evidence,
                                "duration": float(media.samples.size / SAMPLE_RATE)})

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.network(batch)

    def summarize(self, prepared: Prepared, outputs: list[torch.Tensor], explain: bool) -> Finding | NotApplicable:
        logits = np.array([float(o.reshape(-1)[0]) for o in outputs])
        score = float(self.calibration.probability(aggregate(logits)))
        window_scores = np.atleast_1d(self.calibration.probability(logits))
        context = prepared.context
        duration = context["duration"]
        segments = []
        for start, prob in zip(context["starts"], window_scores):
            begin = start / SAMPLE_RATE
            end = min(duration, begin + WINDOW_SECONDS)
            if prob >= self.calibration.synthetic_threshold:
                if segments and begin <= segments[-1]["end"]:
                    segments[-1]["end"] = round(end, 2)
                    segments[-1]["score"] = round(max(segments[-1]["score"], float(prob)), 4)
                else:
                    segments.append({"start": round(begin, 2), "end": round(end, 2), "score": round(float(prob), 4)})
        evidence = {**context["activity"], "duration_seconds": round(duration, 2),
                    "window_seconds": WINDOW_SECONDS, "hop_seconds": HOP_SECONDS,
                    "windows_scored": len(logits), "windows_with_speech": context["candidates"],
                    "aggregation": "mean of the top half of window logits, then calibrated",
                    "suspicious_segments": segments}
        reasons = []
        if context["candidates"] > len(logits):
            reasons.append(f"long audio: {len(logits)} of {context['candidates']} speech windows scored, "
                           "evenly spaced")
        if context["activity"]["speech_seconds"] < 2.0:
            reasons.append(f"little speech ({context['activity']['speech_seconds']} s): weaker evidence")
        if explain:
            evidence["windows"] = [{"start": round(s / SAMPLE_RATE, 2), "score": round(float(p), 4)}
                                   for s, p in zip(context["starts"], window_scores)]
        return Finding(score=score, evidence=evidence, reason="; ".join(reasons) or None)
