"""Batched inference: the detector interface, the model registry, calibration and the engine."""

from .bundle import ModelBundle
from .calibration import Calibration
from .interface import Detector, Finding, NotApplicable, Prepared
from .registry import DetectorSpec, register
from .runner import Done, Engine, Job, select_device

__all__ = ["Calibration", "Detector", "DetectorSpec", "Done", "Engine", "Finding", "Job", "ModelBundle",
           "NotApplicable", "Prepared", "register", "select_device"]
