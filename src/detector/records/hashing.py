"""Perceptual signals for re-upload matching, one kind per modality.

- image: PDQ (256 bits, `pdqhash`); a match is Hamming distance <= 31; the query is also hashed in its 8 dihedral
  variants (rotations and mirrors), so a flipped or rotated copy still matches.
- video: vPDQ-style, one PDQ per sampled frame; a video matches when enough of its frames match the banked ones.
- audio (and a video's soundtrack): Chromaprint (libchromaprint via `pyacoustid`), computed from the decoded 16 kHz
  mono samples; silence and held tones are left out of the comparison.
- text: a 64-bit SimHash of character 5-gram shingles of the normalized text (case, punctuation and spacing removed),
  which works the same for languages written without spaces.

Signals are strings (hex, or Chromaprint's base64) so that banks can be exported and imported as CSV.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from ..media.types import AudioMedia, DecodedMedia, ImageMedia, TextMedia, VideoMedia

PDQ = "pdq"
VPDQ = "vpdq"
CHROMAPRINT = "chromaprint"
TEXT_SIMHASH = "text_simhash"
SIGNAL_TYPES = (PDQ, VPDQ, CHROMAPRINT, TEXT_SIMHASH)

# The PDQ authors' threshold; among 702 dev face images (246,051 pairs) the closest two distinct images were 60 apart.
PDQ_MATCH_DISTANCE = 31
PDQ_MIN_QUALITY = 50                  # below this PDQ flags the hash as unreliable (flat or tiny images)
VPDQ_MATCH_SHARE = 0.5                # share of frames (both sides) that must find a match
# Of 64 bits; unrelated texts sit near 32 +- 4. On 600 dev texts (179,700 pairs) all 13 pairs within 12 bits were
# the same article cut at different lengths.
SIMHASH_MATCH_DISTANCE = 12
SHINGLE_CHARS = 5
# Unrelated audio sits near 0.5 (when it aligns at all); MP3 re-encodes of the same recording stay under 0.1. Of 150
# dev speech clips, 110 are long enough to print; of their pairs, 148 align, the closest unrelated one at 0.33, while
# the same sentence re-synthesized by different vocoders scores 0.03-0.31 (mostly counted as the same content).
CHROMAPRINT_MATCH_BIT_ERROR = 0.30
CHROMAPRINT_MIN_OVERLAP = 24          # fingerprint items (~3 s of audio)
MAX_SIGNAL_CHARS = 200_000            # a vPDQ of ~3000 frames; anything larger is not a signal

_HEX = re.compile(r"^[0-9a-f]+$")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


class SignalError(ValueError):
    """A signal string that is not a valid hash of its type."""


@dataclass(frozen=True)
class Signal:
    signal_type: str
    value: str
    quality: int | None = None        # PDQ quality (0-100) where the hash has one

    def to_dict(self) -> dict:
        return {"signal_type": self.signal_type, "value": self.value, "quality": self.quality}


# ---- PDQ ---------------------------------------------------------------------------------------------------------

def pdq_bits_to_hex(bits: np.ndarray) -> str:
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def pdq_image(rgb: np.ndarray) -> Signal:
    import pdqhash

    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return Signal(PDQ, pdq_bits_to_hex(bits), int(quality))


def pdq_dihedral(rgb: np.ndarray) -> list[str]:
    """The hashes of the 8 rotations/mirrors of the image, the original first."""
    import pdqhash

    hashes, _quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [pdq_bits_to_hex(h) for h in hashes]


def vpdq_frames(frames: list[np.ndarray]) -> Signal | None:
    """One PDQ per frame, low-quality (flat, black) frames dropped; None when no frame is usable."""
    hashes = [s.value for s in (pdq_image(f) for f in frames) if s.quality >= PDQ_MIN_QUALITY]
    return Signal(VPDQ, ",".join(hashes)) if hashes else None


# ---- text SimHash ------------------------------------------------------------------------------------------------

def normalize_for_hash(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NOT_WORD.sub("", text)


def text_simhash(text: str) -> Signal | None:
    """64-bit SimHash over character shingles; None when the text is too short to hash."""
    norm = normalize_for_hash(text)
    if len(norm) < SHINGLE_CHARS:
        return None
    shingles = {norm[i:i + SHINGLE_CHARS] for i in range(len(norm) - SHINGLE_CHARS + 1)}
    digests = np.frombuffer(b"".join(hashlib.blake2b(s.encode(), digest_size=8).digest() for s in shingles),
                            dtype=">u8")
    bits = np.unpackbits(digests.view(np.uint8).reshape(-1, 8), axis=1)       # big-endian bit order
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - len(shingles)
    return Signal(TEXT_SIMHASH, np.packbits(votes > 0).tobytes().hex())


# ---- audio Chromaprint -------------------------------------------------------------------------------------------

def chromaprint_audio(samples: np.ndarray, sample_rate: int) -> Signal | None:
    """Chromaprint's compressed base64 fingerprint of mono float samples; None for audio too short or too steady
    (silence, a held tone) to tell recordings apart."""
    import chromaprint

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    printer = chromaprint.Fingerprinter()
    printer.start(sample_rate, 1)
    printer.feed(pcm.tobytes())
    encoded = printer.finish()
    raw, _algorithm = chromaprint.decode_fingerprint(encoded)
    changing = np.count_nonzero(_changing(np.asarray(raw, dtype=np.uint32))) if raw else 0
    return Signal(CHROMAPRINT, encoded.decode("ascii")) if changing >= CHROMAPRINT_MIN_OVERLAP else None


def chromaprint_items(value: str) -> np.ndarray:
    import chromaprint

    try:
        raw, _algorithm = chromaprint.decode_fingerprint(value.encode("ascii"))
    except (chromaprint.FingerprintError, UnicodeEncodeError) as exc:
        raise SignalError("not a Chromaprint fingerprint (compressed base64)") from exc
    if not raw:
        raise SignalError("empty Chromaprint fingerprint")
    return np.asarray(raw, dtype=np.uint32)


def chromaprint_bit_error(query: np.ndarray, banked: np.ndarray) -> float | None:
    """Bit error rate at the best alignment, found by voting on the offsets of equal items; None if none aligns.
    Only positions where either print changes count: two different recordings that both end in silence must not
    match on the silence."""
    # the top 20 bits of an item survive re-encoding far more often than all 32 (AcoustID keys on them too)
    q_keys, b_keys = query >> 12, banked >> 12
    q_changing, b_changing = _changing(query), _changing(banked)
    positions: dict[int, list[int]] = {}
    for j in np.flatnonzero(b_changing).tolist():
        positions.setdefault(int(b_keys[j]), []).append(j)
    offsets = [i - j for i in np.flatnonzero(q_changing).tolist() for j in positions.get(int(q_keys[i]), ())]
    if not offsets:
        return None
    low = min(offsets)
    votes = np.bincount(np.asarray(offsets) - low)
    best_error = None
    for offset in (votes.argsort()[::-1][:3] + low).tolist():        # the three best-supported alignments
        start_q, start_b = max(0, offset), max(0, -offset)
        length = min(len(query) - start_q, len(banked) - start_b)
        counted = q_changing[start_q:start_q + length] | b_changing[start_b:start_b + length]
        if np.count_nonzero(counted) < CHROMAPRINT_MIN_OVERLAP:
            continue
        differing = np.bitwise_count(query[start_q:start_q + length] ^ banked[start_b:start_b + length])[counted]
        error = float(differing.sum()) / (32.0 * np.count_nonzero(counted))
        best_error = error if best_error is None else min(best_error, error)
    return best_error


def _changing(items: np.ndarray) -> np.ndarray:
    """Where an item differs from the one before: a steady stretch (silence, a held tone) repeats one item and says
    nothing about which recording it is."""
    return np.concatenate(([True], items[1:] != items[:-1])) if len(items) else np.zeros(0, bool)


# ---- validation and extraction -----------------------------------------------------------------------------------

def validate(signal_type: str, value: str) -> str:
    """The canonical form of a signal string, or SignalError saying what is wrong with it."""
    if signal_type not in SIGNAL_TYPES:
        raise SignalError(f"unknown signal type {signal_type!r}; known: {', '.join(SIGNAL_TYPES)}")
    if not isinstance(value, str) or not value.strip():
        raise SignalError(f"{signal_type}: empty hash")
    if len(value) > MAX_SIGNAL_CHARS:
        raise SignalError(f"{signal_type}: hash is {len(value):,} characters, over {MAX_SIGNAL_CHARS:,}")
    value = value.strip()
    if signal_type == PDQ:
        return _hex_of_length(value.lower(), 64, PDQ)
    if signal_type == TEXT_SIMHASH:
        return _hex_of_length(value.lower(), 16, TEXT_SIMHASH)
    if signal_type == VPDQ:
        return ",".join(_hex_of_length(h.strip().lower(), 64, "vpdq frame") for h in value.split(","))
    chromaprint_items(value)
    return value


def _hex_of_length(value: str, length: int, what: str) -> str:
    if len(value) != length or not _HEX.match(value):
        raise SignalError(f"{what}: expected {length} hex digits, got {value[:80]!r}")
    return value


def signals_for(media: DecodedMedia) -> list[Signal]:
    """The signals a bank can match for this decoded item (empty when the item is too small or flat to hash)."""
    if isinstance(media, ImageMedia):
        signal = pdq_image(media.rgb)
        return [signal] if signal.quality >= PDQ_MIN_QUALITY else []
    if isinstance(media, VideoMedia):     # the frames, and the soundtrack as an audio file would be printed
        soundtrack = media.soundtrack
        return [s for s in (vpdq_frames(media.frames),
                            soundtrack and chromaprint_audio(soundtrack.samples, soundtrack.sample_rate)) if s]
    if isinstance(media, AudioMedia):
        audio = chromaprint_audio(media.samples, media.sample_rate)
        return [audio] if audio else []
    if isinstance(media, TextMedia):
        text = text_simhash(media.text)
        return [text] if text else []
    return []
