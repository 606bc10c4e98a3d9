"""The one training loop every recipe uses: config dataclass, seeding, checkpoint + resume, metrics per epoch."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

from detector.metrics import summary

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class _ConfigLoader(yaml.SafeLoader):
    """YAML 1.1 reads 1e-4 (no dot) as a string; in a training config it means the number."""


_ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                    list("-+0123456789"))


def read_config(path: Path) -> dict:
    """A recipe's YAML config as a dict (every recipe reads its config here)."""
    return yaml.load(Path(path).read_text(), Loader=_ConfigLoader) or {}


@dataclass
class TrainConfig:
    out_dir: Path
    epochs: int = 5
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    resume: bool = True
    log_every: int = 20
    grad_clip: float = 5.0
    sam_rho: float = 0.0        # > 0: sharpness-aware minimization (Foret et al. 2021) with this neighbourhood radius
    max_steps_per_epoch: int | None = None       # cap for smoke runs and tests


@dataclass
class TrainResult:
    best_epoch: int
    best_metrics: dict
    history: list[dict]


def stable_fraction(key: str) -> float:
    """Deterministic value in [0, 1) from a string: splits by speaker/utterance/group that never change between runs."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2 ** 32


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary loss on the first output column (the synthetic logit)."""
    if logits.dim() > 1:
        logits = logits[:, 0]
    return F.binary_cross_entropy_with_logits(logits, labels.float())


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


@contextlib.contextmanager
def _batchnorm_stats_frozen(model: nn.Module):
    """Batch norm layers normalize by the batch but leave their running statistics alone (SAM's second pass sees the
    same batch again; counting it twice would skew the statistics used at inference)."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum


def _sharpness_aware_gradients(model: nn.Module, trainable: list, rho: float, loss_at: Callable[[], torch.Tensor]
                               ) -> None:
    """Replace the gradients in `trainable` (computed at the current weights) by those at the worst nearby weights,
    w + rho * g / |g|, and leave the weights where they were: the optimizer then steps towards flat minima."""
    with torch.no_grad():
        originals = [(p, p.detach().clone()) for p in trainable if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p, _ in originals]))
        scale = rho / (norm + 1e-12)
        for p, _ in originals:
            p.add_(p.grad * scale)
    for p in trainable:
        p.grad = None
    with _batchnorm_stats_frozen(model):
        loss_at().backward()
    with torch.no_grad():
        for p, original in originals:
            p.copy_(original)


def total_steps(train_loader: DataLoader, config: TrainConfig) -> int:
    """Optimizer steps that `train` takes: epochs x batches per epoch (capped by max_steps_per_epoch)."""
    return config.epochs * min(len(train_loader), config.max_steps_per_epoch or len(train_loader))


@torch.inference_mode()
def predict(model: nn.Module, loader: DataLoader, device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw synthetic logits (first column) and integer labels over a loader of (inputs, labels)."""
    device = device or next(model.parameters()).device
    model.eval()
    scores, labels = [], []
    for inputs, y in loader:
        out = model(_to(inputs, device)).float()
        scores.append((out[:, 0] if out.dim() > 1 else out).cpu().numpy())
        labels.append(np.asarray(y).reshape(-1) if not isinstance(y, torch.Tensor) else y.cpu().numpy().reshape(-1))
    return np.concatenate(scores), np.concatenate(labels).astype(np.int64)


def train(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader, config: TrainConfig,
          loss_fn: LossFn = bce_loss, params: list | None = None) -> TrainResult:
    """Train, validate each epoch (AUC/EER), checkpoint every epoch and keep the best weights in best.pt."""
    torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    model.to(device)
    trainable = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                    total_steps=max(1, total_steps(train_loader, config)),
                                                    pct_start=0.15)
    checkpoint_path = out / "checkpoint.pt"
    start_epoch, history, best = 0, [], {"epoch": -1, "auc": -1.0}
    if config.resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history, best = state["epoch"] + 1, state["history"], state["best"]
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
    (out / "train_config.json").write_text(json.dumps(dataclasses.asdict(config), default=str, indent=2))

    for epoch in range(start_epoch, config.epochs):
        model.train()
        started, losses = time.time(), []
        for step, (inputs, labels) in enumerate(train_loader):
            if config.max_steps_per_epoch is not None and step >= config.max_steps_per_epoch:
                break
            inputs, labels = _to(inputs, device), _to(labels, device)
            loss = loss_fn(model(inputs), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.sam_rho > 0:
                _sharpness_aware_gradients(model, trainable, config.sam_rho, lambda: loss_fn(model(inputs), labels))
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if config.log_every and step % config.log_every == 0:
                print(f"epoch {epoch} step {step} loss {np.mean(losses[-config.log_every:]):.4f}", flush=True)
        scores, y = predict(model, val_loader, device)
        metrics = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                   "seconds": round(time.time() - started, 1), "device": device_name, **summary(y, scores)}
        history.append(metrics)
        print(json.dumps(metrics), flush=True)
        with open(out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(metrics) + "\n")
        if not np.isnan(metrics["auc"]) and metrics["auc"] > best["auc"]:
            best = metrics
            torch.save(model.state_dict(), out / "best.pt")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch, "history": history, "best": best,
                    "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(),
                    "python_rng": random.getstate()}, checkpoint_path)
    if (out / "best.pt").exists():
        model.load_state_dict(torch.load(out / "best.pt", map_location=device))
    return TrainResult(best_epoch=best["epoch"], best_metrics=best, history=history)
