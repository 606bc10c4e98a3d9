"""Machine-written text detector (English, Chinese): packaged causal-LM statistics + hashed n-grams -> a small head.

preprocess: detect the language, cut the text into sentence-aligned chunks, normalize typography, tokenize, and
score each chunk's n-grams. forward: the language's LM gives per-chunk statistics (likelihood, rank, entropy,
Fast-DetectGPT curvature); the language's head turns them and the n-gram score into a logit. summarize: a
token-weighted mean of chunk logits is the document's raw score; chunk probabilities are the span evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ...engine.bundle import ModelBundle
from ...engine.interface import Detector, Finding, NotApplicable, Prepared
from ...media.types import DecodedMedia, TextMedia
from .chunking import Chunk, chunk_text
from .features import LM_FEATURES, lm_statistics
from .lm import load_lm
from .ngram import ngram_scores
from .normalize import detect_language, normalize_typography

HEAD_INPUTS = (*LM_FEATURES, "ngram_logit")


class TextHead(nn.Module):
    """Standardize the chunk's inputs, a small MLP (or a linear layer), then the language's Platt scaling."""

    def __init__(self, hidden: int):
        super().__init__()
        n_inputs = len(HEAD_INPUTS)
        self.register_buffer("mean", torch.zeros(n_inputs))
        self.register_buffer("scale", torch.ones(n_inputs))
        self.register_buffer("platt", torch.tensor([1.0, 0.0]))
        if hidden:
            self.net = nn.Sequential(nn.Linear(n_inputs, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, 1))
        else:
            self.net = nn.Sequential(nn.Linear(n_inputs, 1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = self.net((inputs - self.mean) / self.scale).squeeze(-1)
        return logits * self.platt[0] + self.platt[1]


@dataclass
class PreparedChunk:
    chunk: Chunk
    text: str                    # typography-normalized chunk text, what the models see
    token_ids: list[int]


def prepare_chunks(text: str, tokenizer: PreTrainedTokenizerBase | None, *, chunk_tokens: int,
                   chars_per_token: float, max_chunks: int) -> tuple[list[PreparedChunk], int]:
    """Sentence-aligned chunks of at most `chunk_tokens` tokens (BOS included when the LM uses one). Without an LM
    tokenizer a token is one character (code point)."""
    chunks, total = chunk_text(text, max_chars=int(chunk_tokens * chars_per_token), max_chunks=max_chunks)
    prepared = []
    for chunk in chunks:
        normalized = normalize_typography(text[chunk.start:chunk.end])
        if not normalized:
            continue
        if tokenizer is None:
            ids = [ord(c) for c in normalized if not c.isspace()][:chunk_tokens]
        else:
            ids = tokenizer(normalized, add_special_tokens=True, truncation=True, max_length=chunk_tokens)["input_ids"]
        if len(ids) >= 2:
            prepared.append(PreparedChunk(chunk, normalized, ids))
    return prepared, total


@dataclass
class _Language:
    code: str
    lm_key: str | None           # None: no LM for this language, the head sees the n-gram score only
    lm: PreTrainedModel | None
    tokenizer: PreTrainedTokenizerBase | None
    head: TextHead
    ngram_coef: np.ndarray | None      # None: this language's head does not use the n-gram score (input 0)
    ngram_bias: float
    min_tokens: int
    reliable_tokens: int
    chars_per_token: float


class MachineTextDetector(Detector):
    name = "machine-text"
    modalities = ("text",)

    def __init__(self, bundle: ModelBundle, device: torch.device):
        super().__init__(bundle, device)
        config = bundle.config
        self.chunk_tokens = int(config["chunk_tokens"])
        self.max_chunks = int(config["max_chunks"])
        state = bundle.state_dict()
        self.languages: dict[str, _Language] = {}
        self.unavailable: dict[str, str] = {}
        for code, settings in config["languages"].items():
            lm, tokenizer = None, None
            if settings.get("lm"):
                try:
                    lm, tokenizer = load_lm(settings["lm"])
                except (RuntimeError, OSError) as exc:      # the LM's package is not installed: that language only
                    self.unavailable[code] = str(exc)
                    continue
            head = TextHead(int(settings["hidden"]))
            prefix = f"{code}.head."
            head.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
            self.languages[code] = _Language(
                code, settings.get("lm"), lm, tokenizer, head,
                state[f"{code}.ngram_coef"].numpy() if settings.get("ngram", True) else None,
                float(state[f"{code}.ngram_bias"]) if settings.get("ngram", True) else 0.0,
                int(settings["min_tokens"]), int(settings["reliable_tokens"]),
                float(settings["chars_per_token"]))
        self.language_order = list(config["languages"])

    def modules(self) -> list[nn.Module]:
        return [m for lang in self.languages.values() for m in (lang.lm, lang.head) if m is not None]

    def preprocess(self, media: DecodedMedia) -> Prepared | NotApplicable:
        if not isinstance(media, TextMedia):
            return NotApplicable(f"machine-text scores text, not {media.modality}")
        # lone surrogates (from odd callers, not the decoder) would break the tokenizers: replace them
        text = media.text.encode("utf-8", "replace").decode("utf-8") if isinstance(media.text, str) else ""
        code, language_stats = detect_language(text)
        evidence = {"language": code, "language_stats": language_stats}
        if code not in self.languages:
            why = self.unavailable.get(code) or f"language {code!r} is not supported (English and Chinese are)"
            return NotApplicable(why, evidence)
        lang = self.languages[code]
        chunks, total = prepare_chunks(text, lang.tokenizer, chunk_tokens=self.chunk_tokens,
                                       chars_per_token=lang.chars_per_token, max_chunks=self.max_chunks)
        tokens = sum(len(c.token_ids) for c in chunks)
        if tokens < lang.min_tokens:
            return NotApplicable(f"text too short to judge: {tokens} tokens, at least {lang.min_tokens} are needed "
                                 f"for {code}", {**evidence, "tokens": tokens})
        if lang.ngram_coef is None:
            ngram = np.zeros(len(chunks), dtype=np.float32)
        else:
            ngram = ngram_scores(code, [c.text for c in chunks], lang.ngram_coef, lang.ngram_bias)
        language_index = self.language_order.index(code)
        units = [{"input_ids": torch.tensor(c.token_ids, dtype=torch.long), "language": language_index,
                  "ngram": float(score)} for c, score in zip(chunks, ngram)]
        return Prepared(units, {"language": code, "language_stats": language_stats, "chunks": chunks,
                                "chunks_total": total, "tokens": tokens})

    def collate(self, units: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(u["input_ids"]) for u in units)
        input_ids = torch.zeros(len(units), longest, dtype=torch.long)
        attention_mask = torch.zeros(len(units), longest, dtype=torch.long)
        for row, unit in enumerate(units):
            input_ids[row, :len(unit["input_ids"])] = unit["input_ids"]
            attention_mask[row, :len(unit["input_ids"])] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask,
                "language": torch.tensor([u["language"] for u in units]),
                "ngram": torch.tensor([u["ngram"] for u in units], dtype=torch.float32)}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, 1 + len(HEAD_INPUTS)]: the chunk logit, then the head's inputs (for evidence)."""
        out = torch.zeros(batch["input_ids"].shape[0], 1 + len(HEAD_INPUTS), device=batch["input_ids"].device)
        for index, code in enumerate(self.language_order):
            rows = (batch["language"] == index).nonzero().squeeze(-1)
            if rows.numel() == 0:
                continue
            lang = self.languages[code]
            mask = batch["attention_mask"][rows]
            width = int(mask.sum(-1).max())
            if lang.lm is None:
                statistics = torch.zeros(rows.numel(), len(LM_FEATURES))
            else:
                statistics = lm_statistics(lang.lm, batch["input_ids"][rows, :width], mask[:, :width])
            inputs = torch.cat([statistics.to(out.device), batch["ngram"][rows].unsqueeze(-1)], dim=-1)
            out[rows, 0] = lang.head(inputs)
            out[rows, 1:] = inputs
        return out

    def summarize(self, prepared: Prepared, outputs: list[torch.Tensor], explain: bool) -> Finding:
        context = prepared.context
        chunks: list[PreparedChunk] = context["chunks"]
        logits = np.array([float(o[0]) for o in outputs])
        weights = np.array([len(c.token_ids) for c in chunks], dtype=np.float64)
        raw = float(np.average(logits, weights=weights))
        score = float(self.calibration.probability(raw))
        chunk_scores = self.calibration.probability(logits)
        lang = self.languages[context["language"]]
        evidence = {
            "language": context["language"],
            "language_model": lang.lm_key,
            "tokens": int(context["tokens"]),
            "chunks_scored": len(chunks),
            "chunks_total": int(context["chunks_total"]),
            "raw_logit": round(raw, 4),
            "spans": [{"start": c.chunk.start, "end": c.chunk.end, "tokens": len(c.token_ids),
                       "score": round(float(s), 4)} for c, s in zip(chunks, chunk_scores)],
        }
        if explain:
            mean_inputs = torch.stack([o[1:] for o in outputs]).mean(0)
            evidence["features"] = {name: round(float(v), 4) for name, v in zip(HEAD_INPUTS, mean_inputs)}
        reasons = []
        if context["tokens"] < lang.reliable_tokens:
            reasons.append(f"short text ({context['tokens']} tokens): scores under {lang.reliable_tokens} tokens are "
                           "less reliable")
        if len(chunks) < context["chunks_total"]:
            reasons.append(f"long text: {len(chunks)} of {context['chunks_total']} chunks scored, evenly spread")
        return Finding(score=score, evidence=evidence, reason="; ".join(reasons) or None)
