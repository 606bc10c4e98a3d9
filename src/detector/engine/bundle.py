"""A model bundle is one folder under models/: config.json, weights, calibration.json and card.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from .calibration import Calibration


@dataclass(frozen=True)
class ModelBundle:
    name: str
    path: Path
    config: dict
    calibration: Calibration

    @property
    def version(self) -> str:
        return str(self.config.get("version", "unversioned"))

    @property
    def caveat(self) -> str | None:
        """What the held-out figures say this version cannot be trusted for (model card: Status), shown with every
        verdict it gives; None for a model without a known weakness worth a warning."""
        return self.config.get("caveat")

    def file(self, key: str) -> Path:
        """Path of a file named in config.json's `files` mapping (e.g. "weights")."""
        return self.path / self.config["files"][key]

    def state_dict(self, key: str = "weights") -> dict[str, torch.Tensor]:
        """Weights stored (fp16) by training/export.py, cast to float32 for inference."""
        tensors = load_file(str(self.file(key)))
        return {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}

    @staticmethod
    def missing_files(path: Path) -> list[str]:
        config_path = path / "config.json"
        if not config_path.is_file():
            return ["config.json"]
        config = json.loads(config_path.read_text())
        wanted = ["calibration.json", *config.get("files", {}).values()]
        return [name for name in wanted if not (path / name).is_file()]

    @classmethod
    def load(cls, name: str, path: Path) -> "ModelBundle":
        config = json.loads((path / "config.json").read_text())
        calibration = Calibration.load(path / "calibration.json")
        return cls(name=name, path=path, config=config, calibration=calibration)
