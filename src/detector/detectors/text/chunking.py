"""Split a text into scoring chunks of whole sentences, keeping character offsets into the original text."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

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


def chunk_text(text: str, max_size: int, max_chunks: int, *, piece_chars: int | None = None,
               sizes: Callable[[list[str]], list[int]] | None = None) -> tuple[list[Chunk], int]:
    """Chunks of consecutive sentences whose sizes add up to at most `max_size`, then at most `max_chunks` of them
    evenly spread over the text. A sentence's size is its length in characters, or what `sizes` gives for the
    sentences' texts (token counts, so that a chunk holds as many tokens as the model reads); a sentence longer than
    `piece_chars` characters (default `max_size`) is first cut into pieces that long. Returns (chosen chunks, total
    number of chunks)."""
    piece_chars = piece_chars or max_size
    pieces = []
    for start, end in sentence_spans(text):
        while end - start > piece_chars:                      # one very long "sentence": cut it
            pieces.append((start, start + piece_chars))
            start += piece_chars
        pieces.append((start, end))
    measured = sizes([text[start:end] for start, end in pieces]) if sizes else [end - start for start, end in pieces]
    chunks: list[Chunk] = []
    current, filled = None, 0
    for (start, end), size in zip(pieces, measured):
        if current and filled + size <= max_size:
            current, filled = Chunk(current.start, end), filled + size
        else:
            if current:
                chunks.append(current)
            current, filled = Chunk(start, end), size
    if current:
        chunks.append(current)
    total = len(chunks)
    if total > max_chunks:
        step = total / max_chunks
        chunks = [chunks[int(i * step)] for i in range(max_chunks)]
    return chunks, total
