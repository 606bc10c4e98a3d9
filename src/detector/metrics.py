"""Detection metrics shared by training, evaluation scripts and model cards."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """Equal error rate: where the false-positive rate equals the miss rate."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, target_fpr: float = 0.01) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    ok = fpr <= target_fpr
    return float(tpr[ok].max()) if ok.any() else 0.0


def summary(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    labels = np.asarray(labels)
    return {
        "n": int(labels.size),
        "n_synthetic": int(labels.sum()),
        "auc": auc(labels, scores),
        "eer": eer(labels, scores) if labels.min() != labels.max() else float("nan"),
        "tpr_at_1pct_fpr": tpr_at_fpr(labels, scores, 0.01) if labels.min() != labels.max() else float("nan"),
    }


def proportion_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95% by default) for a rate of `hits` in `n`, e.g. a false-positive rate measured on a
    few dozen real files: how far the true rate may lie from the measured one."""
    if n <= 0:
        return float("nan"), float("nan")
    rate, spread = hits / n, z * z / n
    centre = (rate + spread / 2) / (1 + spread)
    half = z * np.sqrt(rate * (1 - rate) / n + spread / (4 * n)) / (1 + spread)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def rates_at_threshold(labels: np.ndarray, flagged: np.ndarray) -> dict[str, float | list[float]]:
    """Share of real (label 0) and synthetic (1) files that `flagged` marks, each with its 95% interval; NaN where
    a class has no files."""
    rates: dict[str, float | list[float]] = {}
    for rate, label in (("fpr", 0), ("tpr", 1)):
        hits = np.asarray(flagged)[np.asarray(labels) == label]
        rates[f"{rate}_at_threshold"] = float(hits.mean()) if hits.size else float("nan")
        rates[f"{rate}_at_threshold_interval"] = [round(v, 4) for v in proportion_interval(int(hits.sum()), hits.size)]
    return rates


def paired_change_interval(labels: np.ndarray, baseline: np.ndarray, candidate: np.ndarray, groups: np.ndarray,
                           draws: int = 2000, seed: int = 0) -> dict[str, list[float]]:
    """95% intervals of candidate minus baseline AUROC and TPR at 1% FPR, the same items scored by both, resampling
    whole groups (e.g. a machine text and the human text it is paired with): whether a change between two models is
    larger than the items measured can tell. Items either model left unscored (NaN) are left out."""
    labels, baseline, candidate, groups = map(np.asarray, (labels, baseline, candidate, groups))
    kept = ~(np.isnan(baseline) | np.isnan(candidate))
    labels, baseline, candidate, groups = labels[kept], baseline[kept], candidate[kept], groups[kept]
    names, index = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(index == i) for i in range(len(names))]
    rng = np.random.default_rng(seed)
    changes = []
    for _ in range(draws):
        rows = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        if labels[rows].min() == labels[rows].max():
            continue
        changes.append([auc(labels[rows], candidate[rows]) - auc(labels[rows], baseline[rows]),
                        tpr_at_fpr(labels[rows], candidate[rows]) - tpr_at_fpr(labels[rows], baseline[rows])])
    if not changes:
        return {"auc": [float("nan")] * 2, "tpr_at_1pct_fpr": [float("nan")] * 2}
    low, high = np.percentile(np.array(changes), [2.5, 97.5], axis=0)
    return {"auc": [round(float(low[0]), 4), round(float(high[0]), 4)],
            "tpr_at_1pct_fpr": [round(float(low[1]), 4), round(float(high[1]), 4)]}
