"""The one small interface every modality detector implements.

A detector turns decoded media into *units* (a face crop, an audio window, a text chunk). The engine batches units
across items, runs `forward` once per batch, then hands each item's raw outputs back to `summarize`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..media.types import DecodedMedia, Modality
from .bundle import ModelBundle
from .calibration import Calibration


@dataclass
class NotApplicable:
    """The detector has no model for this input (no face, no speech, too short, no weights...)."""

    reason: str
    evidence: dict = field(default_factory=dict)


@dataclass
class Prepared:
    units: list[Any]                             # one model input per unit; collated into batches by the engine
    context: dict[str, Any] = field(default_factory=dict)   # what summarize needs: boxes, timestamps, spans


@dataclass
class Finding:
    score: float                                 # calibrated probability that the content is synthetic
    evidence: dict = field(default_factory=dict)
    reason: str | None = None                    # e.g. why the verdict may be uncertain
    calibration: Calibration | None = None       # the one that gave `score`, when not the detector's (per language)
    confident: bool = True                       # False: too little evidence for either verdict: `uncertain`


class Detector(ABC):
    name: ClassVar[str]
    modalities: ClassVar[tuple[Modality, ...]]
    channels_last: ClassVar[bool] = False        # conv nets run faster in channels_last on CUDA

    def __init__(self, bundle: ModelBundle, device: torch.device):
        self.bundle = bundle
        self.device = device
        self.calibration = bundle.calibration

    @property
    def version(self) -> str:
        return self.bundle.version

    def identity(self) -> dict:
        """The `model` field of a result: name, version and, when the bundle has one, its caveat."""
        caveat = self.bundle.caveat
        return {"name": self.name, "version": self.version, **({"caveat": caveat} if caveat else {})}

    def modules(self) -> list[nn.Module]:
        """Torch modules the engine moves to the device and puts in eval mode."""
        return []

    @abstractmethod
    def preprocess(self, media: DecodedMedia) -> Prepared | NotApplicable:
        """CPU work; runs in worker threads ahead of the model."""

    def collate(self, units: list[Any]) -> Any:
        return torch.stack(units)

    @abstractmethod
    def forward(self, batch: Any) -> torch.Tensor:
        """Raw outputs for a batch, first dimension = units. Runs under inference mode and autocast."""

    @abstractmethod
    def summarize(self, prepared: Prepared, outputs: list[torch.Tensor], explain: bool) -> Finding | NotApplicable:
        """Aggregate per-unit outputs (CPU float tensors, in unit order) into one calibrated finding."""
