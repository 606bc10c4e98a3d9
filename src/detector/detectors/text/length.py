"""Chunk logits of different lengths on one scale.

A chunk's logit reads the mean hidden state of its tokens, and on human text that mean drifts with the chunk's length:
the shorter the chunk, the higher and more spread out its logit (measured on held-out human writing: see the model
card). Thresholds fitted on full chunks then flag short human texts far more often than their target rate. The
alignment maps a chunk of n tokens onto the scale of a full chunk (`reference_tokens`) by standardizing against the
human logits of its length: mean mu(l) = mean + slope * l and spread sd(l) = sd * exp(log_sd_slope * l), where
l = ln(n / reference_tokens) <= 0. Fitted on human text only, so it says where human writing of a length lies, not
where any generator does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LengthAlignment:
    reference_tokens: int          # chunks this long or longer are left as they are
    shortest_tokens: int           # the shortest length fitted; shorter chunks are aligned as if this long
    human_mean: float              # mu(0): mean human logit at the reference length
    mean_slope: float              # d mu / d l
    log_sd_slope: float            # d ln sd / d l
    fitted_on: str = ""

    def _log_ratio(self, tokens: np.ndarray) -> np.ndarray:
        tokens = np.clip(np.asarray(tokens, dtype=np.float64), self.shortest_tokens, self.reference_tokens)
        return np.log(tokens / self.reference_tokens)

    def apply(self, logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Logits of chunks of `tokens` tokens, moved onto the reference length's scale."""
        ratio = self._log_ratio(tokens)
        centred = np.asarray(logits, dtype=np.float64) - self.human_mean - self.mean_slope * ratio
        return self.human_mean + centred * np.exp(-self.log_sd_slope * ratio)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def fit(cls, logits: np.ndarray, tokens: np.ndarray, reference_tokens: int, fitted_on: str = "",
            min_chunks: int = 10) -> "LengthAlignment":
        """From human chunk logits cut to a few fixed lengths (`tokens`, several chunks per length): a straight line
        through the per-length means and one through the log standard deviations, against ln(n / reference).
        A length with fewer than `min_chunks` chunks is left out."""
        logits, tokens = np.asarray(logits, dtype=np.float64), np.minimum(np.asarray(tokens), reference_tokens)
        lengths = np.array([n for n in np.unique(tokens) if (tokens == n).sum() >= min_chunks])
        if len(lengths) < 2:
            raise ValueError(f"a length alignment needs human chunks of at least two lengths, {min_chunks} or more "
                             "of each")
        grouped = [logits[tokens == n] for n in lengths]
        ratio = np.log(lengths / reference_tokens)
        mean_slope, human_mean = np.polyfit(ratio, [g.mean() for g in grouped], 1)
        log_sd_slope, _ = np.polyfit(ratio, [np.log(g.std(ddof=1)) for g in grouped], 1)
        return cls(int(reference_tokens), int(lengths.min()), float(human_mean), float(mean_slope),
                   float(log_sd_slope), fitted_on)
