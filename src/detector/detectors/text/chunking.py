"""Split a text into scoring chunks, keeping character offsets into the original text: full windows of LM tokens
(what the detector reads), or chunks of whole sentences cut by characters (regions of huge texts, recipe tables)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from .normalize import normalize_with_origins

# a sentence: up to and including its closing punctuation (Latin or CJK) or a line break
_SENTENCE = re.compile(r"[^.!?\u3002\uff01\uff1f\n]*(?:[.!?\u3002\uff01\uff1f]+[\"')\u201d\u2019\u300d]*|\n|$)")


@dataclass(frozen=True)
class Chunk:
    start: int                   # character offsets into the text given to `chunk_text`
    end: int


def sentence_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _SENTENCE.finditer(text):
        start, end = match.span()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def chunk_text(text: str, max_chars: int, max_chunks: int) -> tuple[list[Chunk], int]:
    """Chunks of consecutive sentences up to `max_chars` (longer sentences are cut), then at most `max_chunks` of
    them evenly spread over the text. Returns (chosen chunks, total number of chunks)."""
    chunks: list[Chunk] = []
    current: Chunk | None = None
    for start, end in sentence_spans(text):
        while end - start > max_chars:                        # one very long "sentence": cut it
            if current:
                chunks.append(current)
                current = None
            chunks.append(Chunk(start, start + max_chars))
            start += max_chars
        if current and end - current.start <= max_chars:
            current = Chunk(current.start, end)
        else:
            if current:
                chunks.append(current)
            current = Chunk(start, end)
    if current:
        chunks.append(current)
    total = len(chunks)
    if total > max_chunks:
        step = total / max_chunks
        chunks = [chunks[int(i * step)] for i in range(max_chunks)]
    return chunks, total


@dataclass(frozen=True)
class Window:
    chunk: Chunk                 # the window's characters in the original text
    text: str                    # typography-normalized, what the models see
    token_ids: list[int]         # the tokenizer's special prefix (BOS) included
    new_tokens: int              # tokens no earlier window read (the first window's prefix counted once)


def token_windows(text: str, tokenizer: PreTrainedTokenizerBase | None, *, window_tokens: int, max_windows: int,
                  region_chars: int) -> tuple[list[Window], int]:
    """The normalized text tokenized once and cut into consecutive windows of `window_tokens` (the special prefix
    included; sentences run over into the next window); the last window ends at the text's end, so every window of a
    text longer than one is full. More than `max_windows` windows: that many, evenly spread. Texts over `max_windows`
    x `region_chars` x 4 characters are not tokenized whole: the first window of each of `max_windows` evenly spread
    sentence-aligned regions of `region_chars` is read, and the total is estimated from those. Without a tokenizer a
    token is one non-space character. Returns (windows, total number of windows)."""
    if len(text) <= max_windows * region_chars * 4:
        return _windows_of(text, 0, tokenizer, window_tokens, max_windows)
    regions, total_regions = chunk_text(text, region_chars, max_windows)
    windows = [w for r in regions for w in _windows_of(text[r.start:r.end], r.start, tokenizer, window_tokens, 1)[0]]
    read_chars = sum(w.chunk.end - w.chunk.start for w in windows)
    estimated = math.ceil(len(windows) * len(text) / read_chars) if read_chars else total_regions
    return windows, max(estimated, len(windows) + 1)


def _windows_of(text: str, offset: int, tokenizer: PreTrainedTokenizerBase | None, window_tokens: int,
                max_windows: int) -> tuple[list[Window], int]:
    normalized, origins = normalize_with_origins(text)
    if tokenizer is None:
        prefix: list[int] = []
        ids = [ord(c) for c in normalized if c != " "]
        spans = [(i, i + 1) for i, c in enumerate(normalized) if c != " "]
    else:
        prefix = tokenizer("", add_special_tokens=True)["input_ids"]
        encoding = tokenizer(normalized, add_special_tokens=False, return_offsets_mapping=True)
        ids, spans = encoding["input_ids"], encoding["offset_mapping"]
    size = window_tokens - len(prefix)
    starts = list(range(0, len(ids), size))
    if len(starts) > 1:
        starts[-1] = len(ids) - size
    total = len(starts)
    if total > max_windows:
        step = total / max_windows
        starts = [starts[int(i * step)] for i in range(max_windows)]
    windows, read_until = [], 0
    for start in starts:
        stop = min(start + size, len(ids))
        first, last = spans[start][0], spans[stop - 1][1]
        while first < last and normalized[first] == " ":          # a token's offsets may include its leading space
            first += 1
        # up to the next character read (whitespace between trimmed), so a combining mark stays with its letter
        end = len(text) if last == len(origins) else max(origins[last], origins[last - 1] + 1)
        while end > origins[first] + 1 and text[end - 1].isspace():
            end -= 1
        windows.append(Window(Chunk(offset + origins[first], offset + end), normalized[first:last],
                              prefix + ids[start:stop], stop - max(start, read_until) + (0 if windows else len(prefix))))
        read_until = stop
    return windows, total
