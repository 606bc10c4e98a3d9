"""Split a text into scoring chunks of whole sentences, keeping character offsets into the original text."""

from __future__ import annotations

import re
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
