"""Per-chunk readings of a causal LM over a text: likelihood, rank, entropy and Fast-DetectGPT curvature, and the
mean of one layer's hidden states (what the LM probe reads).

All statistics are per-token means or shares, never sums, so the number of tokens in a chunk (its length) is not a
feature. Fast-DetectGPT's analytic conditional probability curvature (Bao et al., 2024) uses the same model for
sampling and scoring: (log p(x) - E[log p(x~)]) / sqrt(Var[log p(x~)]), here normalized per token.
Every LM pass takes a `precision` (lm.lm_autocast); a context must be read at the precision of the passes after it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel

from .lm import lm_autocast

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
def read_context(model: PreTrainedModel, ids: Sequence[int], precision: str = "float32") -> LMContext:
    with lm_autocast(precision, model.device):
        output = model.model(input_ids=torch.tensor([list(ids)], device=model.device), use_cache=True)
    return LMContext(tuple(ids), tuple((layer.keys, layer.values) for layer in output.cache.layers),
                     output.last_hidden_state[:, -1:])


def _with_context(context: LMContext, rows: int, attention_mask: torch.Tensor,
                  layers: int | None = None) -> tuple[DynamicCache, torch.Tensor]:
    """The context's keys and values (of the first `layers` layers) shared by `rows` chunks, and the chunks' mask
    extended over the context."""
    shared = DynamicCache()
    for index, (keys, values) in enumerate(context.keys_values[:layers]):
        shared.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), index)
    return shared, torch.cat([torch.ones(rows, len(context.ids), dtype=attention_mask.dtype), attention_mask], 1)


def _read_chunks(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 context: LMContext | None, pooled_layer: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One pass of the whole decoder: the final hidden states that predict each scored token of `input_ids` (the
    first one only after a context, whose keys and values all rows share), and the mean output of decoder layer
    `pooled_layer` over each row's tokens (None when no layer is asked for)."""
    capture = {"output_hidden_states": [pooled_layer]} if pooled_layer else {}
    if pooled_layer:
        _check_probe_layer(model, pooled_layer)
    if context is not None:
        rows = input_ids.shape[0]
        shared, mask = _with_context(context, rows, attention_mask)
        output = model.model(input_ids=input_ids, attention_mask=mask, cache=shared, use_cache=True, **capture)
        hidden = torch.cat([context.last_hidden.expand(rows, -1, -1), output.last_hidden_state[:, :-1]], 1)
    else:
        output = model.model(input_ids=input_ids, attention_mask=attention_mask, **capture)
        hidden = output.last_hidden_state[:, :-1]
    pooled = _token_mean(output.hidden_states[pooled_layer], attention_mask) if pooled_layer else None
    return hidden, pooled


def _logits_in_groups(model: PreTrainedModel, hidden: torch.Tensor, rows_per_head: int,
                      precision: str) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, next-token logits) per group of rows. The LM head over a large vocabulary (Gemma: 262k) is the
    memory peak, so it runs on a few rows at a time."""
    softcap = getattr(model.config, "final_logit_softcapping", None)
    for start in range(0, hidden.shape[0], rows_per_head):
        with lm_autocast(precision, hidden.device):
            logits = model.lm_head(hidden[start:start + rows_per_head]).float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        yield start, logits


def _token_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, H]: the mean of hidden states [B, T, H] over each row's tokens (mask [B, T])."""
    weights = attention_mask.unsqueeze(-1).float()
    return (hidden.float() * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def _check_probe_layer(model: PreTrainedModel, layer: int) -> None:
    # the last layer's output is normed into the LM head's input, so its raw output is never read
    if not 1 <= layer < model.config.num_hidden_layers:
        raise ValueError(f"layer {layer}: a probe reads layers 1 to {model.config.num_hidden_layers - 1}")


_FIRST_LAYERS_LOCK = threading.Lock()


def _first_layers(model: PreTrainedModel, layers: int) -> nn.Module:
    """The LM's decoder running only its first `layers` layers and returning the last one's raw output: a shallow
    copy sharing every weight, whose config stops the layer loop early (the decoder reads
    `config.num_hidden_layers`) and whose final norm is an identity (in its own table of submodules, so the shared
    LM keeps its norm). Kept on the LM itself, so it lives and dies with it."""
    with _FIRST_LAYERS_LOCK:
        truncated = model.__dict__.setdefault("_detector_first_layers", {})
        if layers not in truncated:
            decoder = copy.copy(model.model)
            decoder._modules = dict(model.model._modules)
            decoder.norm = nn.Identity()
            decoder.config = copy.copy(model.config)
            decoder.config.num_hidden_layers = layers
            truncated[layers] = decoder
        return truncated[layers]


def pooled_hidden(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, layers: Sequence[int],
                  context: LMContext | None = None, precision: str = "float32") -> torch.Tensor:
    """[B, len(layers), hidden]: the mean over each chunk's tokens of the output of decoder layer l (1-based, before
    the final norm) for l in `layers`, after the context if any. Only the layers up to l run (one pass per layer),
    and never the LM head: a probe on a middle layer costs a fraction of the likelihood pass."""
    pooled = []
    for layer in layers:
        _check_probe_layer(model, layer)
        decoder = _first_layers(model, layer)
        with lm_autocast(precision, input_ids.device):
            if context is not None:
                shared, mask = _with_context(context, input_ids.shape[0], attention_mask, layer)
                hidden = decoder(input_ids=input_ids, attention_mask=mask, cache=shared,
                                 use_cache=True).last_hidden_state
            else:
                hidden = decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled.append(_token_mean(hidden, attention_mask))
    return torch.stack(pooled, 1)


def lm_statistics(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  rows_per_head: int = 4, needed: Sequence[str] = LM_FEATURES,
                  context: LMContext | None = None, precision: str = "float32") -> torch.Tensor:
    """[B, len(LM_FEATURES)]: lm_readings' statistics."""
    return lm_readings(model, input_ids, attention_mask, rows_per_head, needed, context, precision=precision)[0]


def lm_readings(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                rows_per_head: int = 4, needed: Sequence[str] = LM_FEATURES, context: LMContext | None = None,
                pooled_layer: int | None = None,
                precision: str = "float32") -> tuple[torch.Tensor, torch.Tensor | None]:
    """([B, len(LM_FEATURES)] statistics, [B, hidden] mean output of decoder layer `pooled_layer` or None) for
    right-padded token ids [B, T] (T >= 2, or T >= 1 after a context), from one pass of the LM: a probe read with
    the statistics costs no second pass. Features outside `needed` may be 0: when only likelihood features are
    needed, the pass over the whole next-token distribution (half the cost) is skipped. A `context` (read_context)
    comes before every row and conditions the scores without being scored."""
    likelihood_only = set(needed) <= set(LIKELIHOOD_FEATURES)
    first = 1 if context is None else 0                    # the first token that gets a score
    with lm_autocast(precision, input_ids.device):
        hidden, pooled = _read_chunks(model, input_ids, attention_mask, context, pooled_layer)
    rows = []
    for offset, logits in _logits_in_groups(model, hidden, rows_per_head, precision):
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
    return torch.stack(rows), pooled


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


class LMProbe(nn.Module):
    """A linear probe: the mean hidden state of one decoder layer of the (frozen, packaged) LM -> a logit. Trained on
    chat-model answers against human writing, it reads what the LM represents about a text rather than how likely
    the LM finds it."""

    def __init__(self, lm: PreTrainedModel, layer: int, precision: str = "float32"):
        super().__init__()
        self.lm = lm
        self.layer = int(layer)
        self.precision = precision
        self.classifier = nn.Linear(lm.config.hidden_size, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, context: LMContext | None = None,
                pooled: torch.Tensor | None = None) -> torch.Tensor:
        """`pooled`: the layer's mean output if a statistics pass already read it (lm_readings), else one is run."""
        if pooled is None:
            pooled = pooled_hidden(self.lm, input_ids, attention_mask, [self.layer], context, self.precision)[:, 0]
        return self.classifier(pooled).squeeze(-1)
