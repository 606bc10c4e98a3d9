"""Text: bytes (plain text or a web page) to a normalized string that keeps paragraph breaks (text detectors chunk by
paragraph)."""

from __future__ import annotations

import re
import unicodedata

from detector.config import Limits
from detector.media.errors import MediaError
from detector.media.sniff import decode_text_bytes
from detector.media.types import TextMedia

# Where a text file carries its implicit AIGC label (provenance reads and writes them there): an `AIGC:` entry in
# Markdown / YAML front matter, or a last line holding `{"AIGC": ...}`. A label is metadata, not writing: it is taken
# out before a detector reads the text, so labelling a file never changes its score.
FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_FRONT_MATTER_LABEL = re.compile(r"(?i)^aigc\s*:")

_LINE_BREAKS = re.compile(r"\r\n|\r|[\v\f\x85\u2028]")
_PARAGRAPH_SEPARATOR = "\u2029"
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
_BLANK_LINES = re.compile(r"\n{2,}")


def decode_text(data: bytes, limits: Limits) -> TextMedia:
    """Decode BOM UTF-8/UTF-16, strict UTF-8 or GB18030 bytes, then normalize."""
    return text_media(*_decoded(data), limits)


def decode_html(data: bytes, limits: Limits) -> TextMedia:
    """A web page's main text, one paragraph per block: trafilatura keeps the article and drops menus, scripts,
    styles and boilerplate, so markup and site furniture are never judged as writing."""
    import trafilatura                  # here: only web pages need it

    page = without_label(_decoded(data)[0])
    lead = page.split("<", 1)[0].strip()        # text before the markup, shown first (e.g. an AI-generated notice)
    main = trafilatura.extract(page, output_format="txt", include_comments=False, include_tables=True,
                               favor_recall=True, deduplicate=False) or ""
    if not main.strip():
        raise MediaError("empty", "the web page has no main text (menus, scripts and markup are not judged)")
    return text_media("\n\n".join(filter(None, [lead, main.replace("\n", "\n\n")])), "html", limits)


def _decoded(data: bytes) -> tuple[str, str]:
    try:
        return decode_text_bytes(data)
    except UnicodeDecodeError as exc:
        raise MediaError("corrupt", "not valid UTF-8/UTF-16/GB18030 text") from exc


def text_media(text: str, encoding: str, limits: Limits) -> TextMedia:
    """Normalized TextMedia for an already decoded string, its implicit label taken out; refuses text over the limit
    or empty after cleanup."""
    if len(text) > limits.max_text_chars:
        raise MediaError("too_large", f"text has {len(text):,} characters, over the limit of {limits.max_text_chars:,}")
    normalized = normalize_text(without_label(text))
    if not normalized:
        raise MediaError("empty", "no text")
    return TextMedia(text=normalized, encoding=encoding)


def text_trailer_line(text: str) -> tuple[int, str] | None:
    """(offset, line) of the last non-empty line when it is a `{"AIGC": ...}` trailer."""
    stripped = text.rstrip()
    start = stripped.rfind("\n") + 1
    line = stripped[start:].strip()
    if line.startswith("{") and '"AIGC"' in line[:16]:
        return start, line
    return None


def front_matter_without_label(block: str) -> list[str]:
    """Front-matter lines minus an `AIGC:` entry and its indented continuation lines."""
    kept, skipping = [], False
    for line in block.splitlines():
        if _FRONT_MATTER_LABEL.match(line):
            skipping = True
            continue
        if skipping and (line.startswith((" ", "\t")) or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    return kept


def without_label(text: str) -> str:
    """The text with its implicit label taken out: a trailer line, and an `AIGC:` front-matter entry (front matter
    that held nothing else goes with it)."""
    trailer = text_trailer_line(text)
    if trailer:
        text = text[:trailer[0]]
    front = FRONT_MATTER.match(text)
    if front and any(_FRONT_MATTER_LABEL.match(line) for line in front.group(1).splitlines()):
        kept = front_matter_without_label(front.group(1))
        text = text[:front.start(1)] + "\n".join(kept) + text[front.end(1):] if kept else text[front.end():]
    return text


def normalize_text(text: str) -> str:
    """NFKC; one kind of newline; runs of spaces/tabs to one space; blank-line runs to one paragraph break."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace(_PARAGRAPH_SEPARATOR, "\n\n")
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROL.sub("", text)
    text = _HORIZONTAL_SPACE.sub(" ", text)
    text = "\n".join(line.strip(" ") for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()
