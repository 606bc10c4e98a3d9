"""Write a model bundle to models/<name>/: fp16 weights, config.json, calibration.json and the model card."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from detector.engine.calibration import Calibration


def export_bundle(models_dir: Path, name: str, *, config: dict, calibration: Calibration, card: str,
                  state_dict: dict[str, torch.Tensor] | None = None, weights_name: str = "weights.safetensors",
                  extra_files: dict[str, bytes] | None = None, caveat: str | None = None) -> Path:
    """`config` must carry "version"; weights (if any) are stored fp16 and listed in config["files"]. `caveat`, set
    by whoever ships the model after reading its held-out figures, goes out with every verdict."""
    out = Path(models_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    files = dict(config.get("files", {}))
    if state_dict is not None:
        tensors = {k: (v.half() if v.is_floating_point() else v).contiguous().cpu() for k, v in state_dict.items()}
        save_file(tensors, str(out / weights_name))
        files["weights"] = weights_name
    for filename, payload in (extra_files or {}).items():
        (out / filename).write_bytes(payload)
    write_config(out, {**config, "files": files, **({"caveat": caveat} if caveat else {})})
    calibration.save(out / "calibration.json")
    (out / "card.md").write_text(card)
    return out


def write_config(bundle: Path, config: dict) -> None:
    """A bundle's config.json (also rewritten alone, e.g. a new caveat after the figures are read)."""
    (Path(bundle) / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")

