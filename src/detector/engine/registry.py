"""Registry: detector name -> class + weights + calibration + version, loaded lazily once per process."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from ..media.types import Modality
from .bundle import ModelBundle
from .interface import Detector, NotApplicable


@dataclass(frozen=True)
class DetectorSpec:
    name: str                                   # also the folder name under models/
    modalities: tuple[Modality, ...]
    factory: str                                # "package.module:Class", imported on first use
    description: str


_SPECS: dict[str, DetectorSpec] = {}
_LOADED: dict[tuple[str, Path, str], Detector | NotApplicable] = {}
_LOCK = threading.Lock()


def register(spec: DetectorSpec) -> DetectorSpec:
    if spec.name in _SPECS and _SPECS[spec.name] != spec:
        raise ValueError(f"detector {spec.name!r} registered twice")
    _SPECS[spec.name] = spec
    return spec


def specs() -> list[DetectorSpec]:
    _ensure_builtin()
    return list(_SPECS.values())


def for_modality(modality: Modality) -> DetectorSpec | None:
    """The detector that scores this modality (the first registered one)."""
    return next((s for s in specs() if modality in s.modalities), None)


def status(models_dir: Path) -> list[dict]:
    rows = []
    for spec in specs():
        path = models_dir / spec.name
        missing = ModelBundle.missing_files(path)
        bundle = ModelBundle.load(spec.name, path) if not missing else None
        rows.append({"name": spec.name, "modalities": list(spec.modalities),
                     "version": bundle.version if bundle else None, "caveat": bundle.caveat if bundle else None,
                     "weights_present": not missing, "missing": missing, "path": str(path),
                     "description": spec.description})
    return rows


def load(spec: DetectorSpec, models_dir: Path, device: torch.device) -> Detector | NotApplicable:
    """The detector instance for this process, or NotApplicable when its weights are not installed."""
    key = (spec.name, models_dir, str(device))
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = _build(spec, models_dir / spec.name, device)
        return _LOADED[key]


def _build(spec: DetectorSpec, path: Path, device: torch.device) -> Detector | NotApplicable:
    missing = ModelBundle.missing_files(path)
    if missing:
        return NotApplicable(f"detector {spec.name!r} has no weights installed ({', '.join(missing)} missing in {path})")
    module_name, class_name = spec.factory.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    detector: Detector = cls(ModelBundle.load(spec.name, path), device)
    for module in detector.modules():
        module.to(device).eval()
        if detector.channels_last and device.type == "cuda":
            module.to(memory_format=torch.channels_last)
    return detector


def _ensure_builtin() -> None:
    importlib.import_module("detector.detectors")
