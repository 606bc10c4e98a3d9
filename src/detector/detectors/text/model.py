"""Machine-written text detector (English, Chinese): packaged causal-LM statistics, a linear probe on the same LM's
hidden states, a packaged sentence encoder with a trained classifier, and hashed n-grams -> a small per-language head.

preprocess: detect the language, cut the text into sentence-aligned chunks, normalize typography, tokenize (for the
LM and the encoder), and score each chunk's n-grams. forward: the language's LM gives per-chunk statistics
(likelihood, rank, entropy, Fast-DetectGPT curvature), its probe (read in the same pass) and its encoder
classifier a logit each; the language's head turns the inputs its config names into a logit (only what the head
reads is computed). summarize: chunk logits, moved onto a full chunk's scale where the config fits a length
alignment (length.py), then their token-weighted mean is the document's raw score; chunk probabilities are the span
evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ...engine.bundle import ModelBundle
from ...engine.calibration import Calibration
from ...engine.interface import Detector, Finding, NotApplicable, Prepared
from ...media.types import DecodedMedia, TextMedia
from .chunking import Chunk, chunk_text
from .encoder import EncoderClassifier, load_encoder
from .features import LM_FEATURES, LMContext, LMProbe, lm_readings, read_context
from .length import LengthAlignment
from .lm import chat_context_ids, load_lm
from .ngram import ngram_scores
from .normalize import detect_language, normalize_with_origins

HEAD_INPUTS = (*LM_FEATURES, "ngram_logit", "encoder_logit", "lm_probe_logit")
ENCODER_MAX_TOKENS = 192         # word pieces per chunk for the sentence encoder (a 128-token LM chunk fits)


class TextHead(nn.Module):
    """Standardize the chunk's chosen inputs, a small MLP (or a linear layer), then the language's Platt scaling."""

    def __init__(self, n_inputs: int, hidden: int):
        super().__init__()
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
    chunk: Chunk                 # the chunk's characters in the original text
    read: Chunk                  # the part of them the LM reads (a chunk longer than `chunk_tokens` is cut short)
    text: str                    # typography-normalized chunk text, what the models see
    token_ids: list[int]
    encoder_ids: list[int] | None = None


def prepare_chunks(text: str, tokenizer: PreTrainedTokenizerBase | None, *, chunk_tokens: int,
                   chars_per_token: float, max_chunks: int,
                   encoder_tokenizer: PreTrainedTokenizerBase | None = None) -> tuple[list[PreparedChunk], int]:
    """Sentence-aligned chunks of at most `chunk_tokens` tokens (BOS included when the LM uses one). Without an LM
    tokenizer a token is one character (code point). With an encoder tokenizer, each chunk also gets its ids."""
    chunks, total = chunk_text(text, max_chars=int(chunk_tokens * chars_per_token), max_chunks=max_chunks)
    prepared = []
    for chunk in chunks:
        original = text[chunk.start:chunk.end]
        normalized, origins = normalize_with_origins(original)
        if not normalized:
            continue
        if tokenizer is None:
            read_chars = [i for i, c in enumerate(normalized) if not c.isspace()][:chunk_tokens]
            ids = [ord(normalized[i]) for i in read_chars]
            read_until = read_chars[-1] + 1 if read_chars else 0
        else:
            encoding = tokenizer(normalized, add_special_tokens=True, truncation=True, max_length=chunk_tokens,
                                 return_offsets_mapping=True)
            ids = encoding["input_ids"]
            read_until = max(end for _, end in encoding["offset_mapping"])      # special tokens are (0, 0)
        if len(ids) >= 2:
            encoder_ids = None if encoder_tokenizer is None else encoder_tokenizer(
                normalized, truncation=True, max_length=ENCODER_MAX_TOKENS)["input_ids"]
            read = Chunk(chunk.start, chunk.start + _original_end(original, origins, read_until))
            prepared.append(PreparedChunk(chunk, read, normalized, ids, encoder_ids))
    return prepared, total


def _original_end(original: str, origins: list[int], normalized_end: int) -> int:
    """Where the first `normalized_end` normalized characters end in `original`: up to the next character (so a
    combining mark stays with its letter), trailing whitespace left out."""
    if normalized_end >= len(origins):
        return len(original.rstrip())
    end = max(origins[normalized_end], origins[normalized_end - 1] + 1)
    while end > origins[0] + 1 and original[end - 1].isspace():
        end -= 1
    return end


@dataclass
class _Language:
    code: str
    lm_key: str | None           # None: no LM for this language, the head sees the n-gram score only
    lm: PreTrainedModel | None
    tokenizer: PreTrainedTokenizerBase | None
    lm_context: LMContext | None          # the chat template the LM reads before each chunk
    encoder: EncoderClassifier | None      # None: this language's head does not use the encoder (input 0)
    encoder_tokenizer: PreTrainedTokenizerBase | None
    probe: LMProbe | None                  # None: this language's head does not use the LM probe (input 0)
    head: TextHead
    head_columns: list[int]               # which of HEAD_INPUTS the head reads
    ngram_coef: np.ndarray | None      # None: this language's head does not use the n-gram score (input 0)
    ngram_bias: float
    min_tokens: int
    reliable_tokens: int
    confident_tokens: int                  # under it the verdict is `uncertain`, whatever the score
    chars_per_token: float
    calibration: Calibration              # this language's scores and thresholds (its own validation humans)
    length_alignment: LengthAlignment | None   # None: chunk logits are read as they are, whatever their length


class MachineTextDetector(Detector):
    name = "machine-text"
    modalities = ("text",)

    def __init__(self, bundle: ModelBundle, device: torch.device):
        super().__init__(bundle, device)
        config = bundle.config
        self.chunk_tokens = int(config["chunk_tokens"])
        self.max_chunks = int(config["max_chunks"])
        self.lm_precision = config.get("lm_precision", "float32")     # lm.lm_autocast: how the LMs run
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
            encoder, encoder_tokenizer = None, None
            if settings.get("encoder_layers"):
                try:
                    base, encoder_tokenizer = load_encoder()
                except (RuntimeError, OSError) as exc:      # the encoder's package is not installed
                    self.unavailable[code] = str(exc)
                    continue
                encoder = EncoderClassifier(base, settings["encoder_layers"])
                encoder.classifier.load_state_dict(_with_prefix(state, f"{code}.encoder."))
            probe = None
            if settings.get("probe_layer"):
                probe = LMProbe(lm, settings["probe_layer"], self.lm_precision)
                probe.classifier.load_state_dict(_with_prefix(state, f"{code}.probe."))
            head_inputs = settings.get("head_inputs", HEAD_INPUTS)
            uses_ngram = settings.get("ngram", True)
            head = TextHead(len(head_inputs), int(settings["hidden"]))
            head.load_state_dict(_with_prefix(state, f"{code}.head."))
            context_ids = chat_context_ids(tokenizer, settings.get("lm_context_prompt"))
            self.languages[code] = _Language(
                code, settings.get("lm"), lm, tokenizer,
                read_context(lm, context_ids, self.lm_precision) if context_ids else None,
                encoder, encoder_tokenizer, probe, head,
                [HEAD_INPUTS.index(name) for name in head_inputs],
                state[f"{code}.ngram_coef"].numpy() if uses_ngram else None,
                float(state[f"{code}.ngram_bias"]) if uses_ngram else 0.0,
                int(settings["min_tokens"]), int(settings["reliable_tokens"]),
                int(settings.get("confident_tokens", settings["min_tokens"])),
                float(settings["chars_per_token"]),
                Calibration(**settings["calibration"]) if settings.get("calibration") else self.calibration,
                LengthAlignment(**settings["length_alignment"]) if settings.get("length_alignment") else None)
        self.language_order = list(config["languages"])

    def modules(self) -> list[nn.Module]:
        return [m for lang in self.languages.values() for m in (lang.lm, lang.encoder, lang.probe, lang.head)
                if m is not None]

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
                                       chars_per_token=lang.chars_per_token, max_chunks=self.max_chunks,
                                       encoder_tokenizer=lang.encoder_tokenizer)
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
                  "encoder_ids": torch.tensor(c.encoder_ids or [], dtype=torch.long), "ngram": float(score)}
                 for c, score in zip(chunks, ngram)]
        return Prepared(units, {"language": code, "language_stats": language_stats, "chunks": chunks,
                                "chunks_total": total, "tokens": tokens, "text": text})

    def collate(self, units: list[dict]) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = _pad([u["input_ids"] for u in units])
        encoder_ids, encoder_mask = _pad([u["encoder_ids"] for u in units])
        return {"input_ids": input_ids, "attention_mask": attention_mask,
                "encoder_ids": encoder_ids, "encoder_mask": encoder_mask,
                "language": torch.tensor([u["language"] for u in units]),
                "ngram": torch.tensor([u["ngram"] for u in units], dtype=torch.float32)}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, 1 + len(HEAD_INPUTS)]: the chunk logit, then the inputs (those the head does not read are 0)."""
        out = torch.zeros(batch["input_ids"].shape[0], 1 + len(HEAD_INPUTS), device=batch["input_ids"].device)
        for index, code in enumerate(self.language_order):
            rows = (batch["language"] == index).nonzero().squeeze(-1)
            if rows.numel() == 0:
                continue
            lang = self.languages[code]
            mask = batch["attention_mask"][rows]
            width = int(mask.sum(-1).max())
            if lang.lm is None or not any(c < len(LM_FEATURES) for c in lang.head_columns):
                statistics, pooled = torch.zeros(rows.numel(), len(LM_FEATURES)), None   # the head reads no statistic
            else:
                statistics, pooled = lm_readings(lang.lm, batch["input_ids"][rows, :width], mask[:, :width],
                                                 needed=[HEAD_INPUTS[c] for c in lang.head_columns],
                                                 context=lang.lm_context,
                                                 pooled_layer=lang.probe.layer if lang.probe else None,
                                                 precision=self.lm_precision)
            if lang.encoder is None:
                encoder_logit = torch.zeros(rows.numel(), device=out.device)
            else:
                encoder_mask = batch["encoder_mask"][rows]
                encoder_width = int(encoder_mask.sum(-1).max())
                encoder_logit = lang.encoder(batch["encoder_ids"][rows, :encoder_width],
                                             encoder_mask[:, :encoder_width])
            if lang.probe is None:
                probe_logit = torch.zeros(rows.numel(), device=out.device)
            else:
                probe_logit = lang.probe(batch["input_ids"][rows, :width], mask[:, :width], lang.lm_context, pooled)
            inputs = torch.cat([statistics.to(out.device), batch["ngram"][rows].unsqueeze(-1),
                                encoder_logit.to(out.device).unsqueeze(-1), probe_logit.to(out.device).unsqueeze(-1)],
                               dim=-1)
            out[rows, 0] = lang.head(inputs[:, lang.head_columns])
            out[rows, 1:] = inputs
        return out

    def summarize(self, prepared: Prepared, outputs: list[torch.Tensor], explain: bool) -> Finding:
        context = prepared.context
        chunks: list[PreparedChunk] = context["chunks"]
        lang = self.languages[context["language"]]
        weights = np.array([len(c.token_ids) for c in chunks], dtype=np.float64)
        logits = np.array([float(o[0]) for o in outputs])
        if lang.length_alignment is not None:             # short chunks onto the full chunks' scale
            logits = lang.length_alignment.apply(logits, weights)
        raw = float(np.average(logits, weights=weights))
        score = float(lang.calibration.probability(raw))
        chunk_scores = lang.calibration.probability(logits)
        evidence = {
            "language": context["language"],
            "language_model": lang.lm_key,
            "tokens": int(context["tokens"]),
            "chunks_scored": len(chunks),
            "chunks_total": int(context["chunks_total"]),
            "raw_logit": round(raw, 4),
            "thresholds": {"synthetic": round(lang.calibration.synthetic_threshold, 4),
                           "authentic": round(lang.calibration.authentic_threshold, 4)},
            # what the LM read of each chunk; the rest of a chunk cut short at `chunk_tokens` is not scored by it.
            # Offsets index the decoded text (a file's, a PDF's text layer, a web page's main text), which the
            # caller may never see: each span also carries its passage
            "spans": [{"start": c.read.start, "end": c.read.end, "tokens": len(c.token_ids),
                       "score": round(float(s), 4), "text": context["text"][c.read.start:c.read.end]}
                      for c, s in zip(chunks, chunk_scores)],
            "unread_characters": sum(c.chunk.end - c.read.end for c in chunks),
        }
        if explain:
            mean_inputs = torch.stack([o[1:] for o in outputs]).mean(0)
            evidence["features"] = {HEAD_INPUTS[c]: round(float(mean_inputs[c]), 4) for c in lang.head_columns}
        reasons = []
        confident = context["tokens"] >= lang.confident_tokens
        if not confident:
            reasons.append(f"short text ({context['tokens']} tokens): under {lang.confident_tokens} tokens, human "
                           "text in this language is flagged far above the target rate (model card), so the verdict "
                           "is `uncertain` whatever the score")
        elif context["tokens"] < lang.reliable_tokens:
            reasons.append(f"short text ({context['tokens']} tokens): scores under {lang.reliable_tokens} tokens are "
                           "less reliable")
        if len(chunks) < context["chunks_total"]:
            reasons.append(f"long text: {len(chunks)} of {context['chunks_total']} chunks scored, evenly spread")
        return Finding(score=score, evidence=evidence, reason="; ".join(reasons) or None, calibration=lang.calibration,
                       confident=confident)


def _with_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _pad(sequences: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, T] (T >= 1) and their 0/1 mask."""
    longest = max(1, max(len(s) for s in sequences))
    ids = torch.zeros(len(sequences), longest, dtype=torch.long)
    mask = torch.zeros(len(sequences), longest, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = sequence
        mask[row, :len(sequence)] = 1
    return ids, mask
