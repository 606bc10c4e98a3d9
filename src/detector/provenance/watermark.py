"""Invisible DWT-DCT watermarks (the `invisible-watermark` package), with the public messages that open-source
Stable Diffusion pipelines embed.

- SDXL: diffusers `pipelines/stable_diffusion_xl/watermark.py` (copied from Stability-AI/generative-models
  `scripts/demo/streamlit_helpers.py`): `WATERMARK_MESSAGE = 0b101100111110110010010000011110111011000110011110`,
  embedded as 48 bits with `WatermarkEncoder().set_watermark("bits", ...)` and `encode(bgr, "dwtDct")`.
- Stable Diffusion 1.x: CompVis `scripts/txt2img.py` embeds the bytes `"StableDiffusionV1"` (136 bits).
- Stable Diffusion 2.x: Stability-AI/stablediffusion `scripts/txt2img.py` embeds the bytes `"SDV2"` (32 bits).

All of them encode in BGR channel order, so the decoder is given BGR too. Decoded bits are compared with each known
message; the confidence is the fraction of agreeing bits, and `p_random` is the chance that an unmarked image agrees
at least that well (binomial, p = 1/2 per bit). A mark counts as detected when `p_random` <= 1e-6, which tolerates
the bit errors that mild re-encoding causes.
"""

from __future__ import annotations

from math import comb

import numpy as np

SDXL_MESSAGE = 0b101100111110110010010000011110111011000110011110
SDXL_BITS = [int(bit) for bit in bin(SDXL_MESSAGE)[2:]]
KNOWN_MESSAGES = {
    "Stable Diffusion XL": SDXL_BITS,
    "Stable Diffusion 1.x": [int(b) for byte in b"StableDiffusionV1" for b in f"{byte:08b}"],
    "Stable Diffusion 2.x": [int(b) for byte in b"SDV2" for b in f"{byte:08b}"],
}
MAX_P_RANDOM = 1e-6       # detected when chance agreement is this unlikely: 40 of 48 SDXL bits, 97 of 136 SD 1.x bits
MAX_DECODE_SIDE = 1024    # decode at most this top-left square: SDXL outputs are about this size; cost ~0.5 s
MIN_SIDE = 256            # the SDXL pipeline does not mark smaller images; DWT-DCT decoding is noise below this


def binomial_tail(agree: int, total: int) -> float:
    """P(X >= agree) for X ~ Binomial(total, 1/2)."""
    return sum(comb(total, k) for k in range(agree, total + 1)) / 2 ** total


def block_bits(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bit, block number) for every 4x4 block of the U-channel DWT approximation in the top-left region.

    `WatermarkDecoder("bits", L)` reads blocks row by row and averages block number n into bit n mod L. Reading each
    block once lets all known message lengths share one pass, and reading only a top-left region of at most
    MAX_DECODE_SIDE squared pixels (aligned to the 8-pixel block grid, numbered as in the whole image) bounds the cost;
    every bit still gets hundreds of votes.
    """
    from imwatermark.maxDct import EmbedMaxDct

    def block_grid(height: int, width: int) -> tuple[int, int]:
        return (height // 4 * 4) // 2 // 4, (width // 4 * 4) // 2 // 4

    _, full_cols = block_grid(*bgr.shape[:2])
    region = np.ascontiguousarray(bgr[:MAX_DECODE_SIDE, :MAX_DECODE_SIDE])
    rows, cols = block_grid(*region.shape[:2])
    bits = np.asarray(EmbedMaxDct(watermarks=[], wmLen=rows * cols).decode(region), dtype=np.float64)
    order = np.arange(rows * cols)
    return bits, (order // cols) * full_cols + order % cols


def bits_for_length(per_block: np.ndarray, numbers: np.ndarray, length: int) -> list[int]:
    """The library's averaging: bit i is the mean of the blocks numbered i mod `length`, thresholded at 127/255."""
    index = numbers % length
    means = np.bincount(index, weights=per_block, minlength=length) / np.maximum(np.bincount(index, minlength=length), 1)
    return [int(bit) for bit in means * 255 > 127]


def detect_watermark(rgb: np.ndarray) -> dict:
    """Decode each known message length from an H x W x 3 uint8 RGB image."""
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        return {"checked": False, "reason": f"image is {width}x{height}; DWT-DCT marks need both sides >= {MIN_SIDE}"}
    per_block, numbers = block_bits(np.ascontiguousarray(rgb[:, :, ::-1]))
    candidates = []
    for name, message in KNOWN_MESSAGES.items():
        decoded = bits_for_length(per_block, numbers, len(message))
        agree = sum(int(a == b) for a, b in zip(decoded, message))
        candidates.append({
            "message": name,
            "bits": "".join(map(str, decoded)),
            "agreeing_bits": agree,
            "total_bits": len(message),
            "confidence": round(agree / len(message), 4),
            "p_random": binomial_tail(agree, len(message)),
        })
    best = min(candidates, key=lambda c: c["p_random"])
    detected = best["p_random"] <= MAX_P_RANDOM
    return {
        "checked": True,
        "method": "dwtDct",
        "detected": detected,
        "message": best["message"] if detected else None,
        "sdxl_match": detected and best["message"] == "Stable Diffusion XL",
        "bits": best["bits"],
        "confidence": best["confidence"],
        "p_random": best["p_random"],
        "candidates": candidates,
    }
