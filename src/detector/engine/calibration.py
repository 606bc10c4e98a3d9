"""Raw model outputs -> calibrated probabilities -> verdicts.

Calibration is data (models/<name>/calibration.json), fitted on held-out examples by the training recipes with the
`fit` function below, so inference and training share one definition.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Method = Literal["temperature", "platt", "isotonic", "logit"]   # logit: raw is already a calibrated log-odds
Verdict = Literal["synthetic", "authentic", "uncertain"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


@dataclass
class Calibration:
    method: Method
    params: dict = field(default_factory=dict)
    # probability >= synthetic_threshold -> synthetic; <= authentic_threshold -> authentic; between -> uncertain
    synthetic_threshold: float = 0.5
    authentic_threshold: float = 0.5
    target_fpr: float | None = None              # the false-positive rate synthetic_threshold was chosen for
    fitted_on: str = ""                          # what held-out data the fit used

    def probability(self, raw: np.ndarray | float) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "temperature":
            return _sigmoid(raw / self.params["temperature"])
        if self.method == "platt":
            return _sigmoid(self.params["a"] * raw + self.params["b"])
        if self.method == "isotonic":
            return np.interp(raw, self.params["x"], self.params["y"])
        if self.method == "logit":
            return _sigmoid(raw)
        raise ValueError(f"unknown calibration method {self.method!r}")

    def verdict(self, probability: float, synthetic_threshold: float | None = None,
                authentic_threshold: float | None = None) -> Verdict:
        hi = self.synthetic_threshold if synthetic_threshold is None else synthetic_threshold
        lo = self.authentic_threshold if authentic_threshold is None else authentic_threshold
        if probability >= hi:
            return "synthetic"
        if probability <= min(lo, hi):
            return "authentic"
        return "uncertain"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Calibration":
        return cls(**json.loads(path.read_text()))


def fit(raw: np.ndarray, labels: np.ndarray, method: Method = "platt", target_fpr: float = 0.01,
        uncertain_fpr: float = 0.05, fitted_on: str = "") -> Calibration:
    """Fit a calibrator on held-out raw scores and pick thresholds.

    synthetic_threshold keeps the false-positive rate on held-out real items at `target_fpr`; authentic_threshold is
    the probability under which only `uncertain_fpr` of held-out synthetic items fall. Between the two: "uncertain".
    """
    raw = np.asarray(raw, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if method == "temperature":
        params = {"temperature": _fit_temperature(raw, labels)}
    elif method == "platt":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1e4).fit(raw.reshape(-1, 1), labels)
        params = {"a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}
    elif method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.001, y_max=0.999).fit(raw, labels)
        params = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    elif method == "logit":      # the model calibrates itself (e.g. a head with its own Platt): thresholds only
        params = {}
    else:
        raise ValueError(f"unknown calibration method {method!r}")
    calibration = Calibration(method=method, params=params, target_fpr=target_fpr, fitted_on=fitted_on)
    probs = calibration.probability(raw)
    calibration.synthetic_threshold = threshold_at_fpr(probs[labels == 0], target_fpr)
    miss_cut = float(np.quantile(probs[labels == 1], uncertain_fpr)) if (labels == 1).any() else 0.5
    calibration.authentic_threshold = min(miss_cut, calibration.synthetic_threshold)
    return calibration


def threshold_at_fpr(negative_scores: np.ndarray, target_fpr: float) -> float:
    """Smallest threshold t with P(score >= t | real) <= target_fpr."""
    negatives = np.sort(np.asarray(negative_scores, dtype=np.float64))
    if negatives.size == 0:
        return 0.5
    allowed = int(np.floor(target_fpr * negatives.size))
    # scores strictly above the cut may be at most `allowed` negatives
    cut = negatives[negatives.size - allowed - 1]
    return float(np.nextafter(cut, np.inf))


def _fit_temperature(raw: np.ndarray, labels: np.ndarray) -> float:
    temperatures = np.exp(np.linspace(np.log(0.05), np.log(20.0), 400))
    eps = 1e-7
    losses = []
    for t in temperatures:
        p = np.clip(_sigmoid(raw / t), eps, 1 - eps)
        losses.append(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    return float(temperatures[int(np.argmin(losses))])
