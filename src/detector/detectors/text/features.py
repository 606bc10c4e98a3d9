"""Per-chunk statistics of a causal LM over a text: likelihood, rank, entropy and Fast-DetectGPT curvature.

All statistics are per-token means or shares, never sums, so the number of tokens in a chunk (its length) is not a
feature. Fast-DetectGPT's analytic conditional probability curvature (Bao et al., 2024) uses the same model for
sampling and scoring: (log p(x) - E[log p(x~)]) / sqrt(Var[log p(x~)]), here normalized per token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel

LM_FEATURES = (
    "log_likelihood_mean", "log_likelihood_std", "log_likelihood_q10", "log_likelihood_q25", "log_likelihood_q50",
    "log_likelihood_q75", "log_likelihood_q90", "entropy_mean", "entropy_std", "log_rank_mean", "top1_share",
    "top10_share", "surprise_gap_mean", "surprise_gap_std", "fast_detectgpt_curvature",
)
LIKELIHOOD_FEATURES = LM_FEATURES[:7]       # functions of log p(x) alone
_QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)


@dataclass(frozen=True)
class LMContext:
    """Ids an LM reads before every chunk, read once: their keys and values per layer and the last hidden state
    (which predicts a chunk's first token)."""
    ids: tuple[int, ...]
    keys_values: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    last_hidden: torch.Tensor                       # [1, 1, hidden]


@torch.no_grad()
def read_context(model: PreTrainedModel, ids: Sequence[int]) -> LMContext:
    output = model.model(input_ids=torch.tensor([list(ids)]), use_cache=True)
    return LMContext(tuple(ids), tuple((layer.keys, layer.values) for layer in output.cache.layers),
                     output.last_hidden_state[:, -1:])


def next_token_logits(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      rows_per_head: int, context: LMContext | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, logits) per group of rows, for every position that predicts a token of `input_ids` (the first
    one only after a context, whose keys and values all rows share). The LM head over a large vocabulary (Gemma:
    262k) is the memory peak, so it runs on a few rows at a time."""
    if context is not None:
        rows = input_ids.shape[0]
        shared = DynamicCache()
        for index, (keys, values) in enumerate(context.keys_values):
            shared.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), index)
        mask = torch.cat([torch.ones(rows, len(context.ids), dtype=attention_mask.dtype), attention_mask], 1)
        hidden = model.model(input_ids=input_ids, attention_mask=mask, cache=shared, use_cache=True).last_hidden_state
        hidden = torch.cat([context.last_hidden.expand(rows, -1, -1), hidden[:, :-1]], 1)
    else:
        hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, :-1]
    softcap = getattr(model.config, "final_logit_softcapping", None)
    for start in range(0, hidden.shape[0], rows_per_head):
        logits = model.lm_head(hidden[start:start + rows_per_head]).float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        yield start, logits


def lm_statistics(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  rows_per_head: int = 4, needed: Sequence[str] = LM_FEATURES,
                  context: LMContext | None = None) -> torch.Tensor:
    """[B, len(LM_FEATURES)] for right-padded token ids [B, T] (T >= 2, or T >= 1 after a context). Features outside
    `needed` may be 0: when only likelihood features are needed, the pass over the whole next-token distribution (half
    the cost) is skipped. A `context` (read_context) comes before every row and conditions the scores without
    being scored."""
    likelihood_only = set(needed) <= set(LIKELIHOOD_FEATURES)
    first = 1 if context is None else 0                    # the first token that gets a score
    rows = []
    for offset, logits in next_token_logits(model, input_ids, attention_mask, rows_per_head, context):
        targets = input_ids[offset:offset + logits.shape[0], first:].unsqueeze(-1)
        mask = attention_mask[offset:offset + logits.shape[0], first:].bool()
        if likelihood_only:
            token_ll = (logits.gather(-1, targets) - logits.logsumexp(-1, keepdim=True)).squeeze(-1)
            rows += [_row_features(token_ll[i][mask[i]]) for i in range(token_ll.shape[0])]
            continue
        log_probs = torch.log_softmax(logits, dim=-1)
        token_ll = log_probs.gather(-1, targets).squeeze(-1)
        probs = log_probs.exp()
        expected_ll = (probs * log_probs).sum(-1)                      # = -entropy
        variance_ll = (probs * log_probs.square()).sum(-1) - expected_ll.square()
        rank = (logits > logits.gather(-1, targets)).sum(-1) + 1
        del logits, log_probs, probs
        for i in range(token_ll.shape[0]):
            rows.append(_row_features(token_ll[i][mask[i]], (-expected_ll[i][mask[i]], variance_ll[i][mask[i]],
                                                             rank[i][mask[i]].float())))
    return torch.stack(rows)


def _row_features(ll: torch.Tensor,
                  distribution: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """One chunk's features; `distribution` (entropy, variance of log p, rank per token) is None when only the
    likelihood features were asked for, and those after them are then 0."""
    features = torch.zeros(len(LM_FEATURES))
    if ll.numel() == 0:
        return features
    quantiles = torch.quantile(ll, torch.tensor(_QUANTILES, dtype=ll.dtype))
    values = [ll.mean(), ll.std(unbiased=False), *quantiles]
    if distribution is not None:
        entropy, variance, rank = distribution
        gap = ll + entropy                                          # log p(x) - E[log p(x~)], per token
        curvature = gap.mean() / variance.mean().clamp_min(1e-6).sqrt()
        values += [entropy.mean(), entropy.std(unbiased=False), rank.log().mean(), (rank == 1).float().mean(),
                   (rank <= 10).float().mean(), gap.mean(), gap.std(unbiased=False), curvature]
    features[:len(values)] = torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in values])
    return features
