"""Typography normalization and language detection applied before any text feature, in training and inference.

The evaluation straightens quotes and dashes and collapses whitespace; doing the same here means em dashes, curly
apostrophes, blank lines or exotic spaces cannot become what the model keys on.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Literal

Language = Literal["en", "zh", "other"]

_TYPOGRAPHY = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u3000": " ", "\u200b": "", "\ufeff": "",
})
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_ENGLISH_FUNCTION_WORDS = frozenset(
    "the of and to a in is that it for was on with as be by this are at from or an have not but which "
    "they you he she we his her their its has had were been will would can there".split())


# a character and the combining marks after it: NFKC composes within such a cluster, never across clusters
_CLUSTER = re.compile(r".[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\u3099\u309a]*", re.S)


@functools.lru_cache(maxsize=65536)
def _normalize_cluster(cluster: str) -> str:
    return unicodedata.normalize("NFKC", cluster).translate(_TYPOGRAPHY)


def normalize_typography(text: str) -> str:
    """NFKC (as the text decoder does), straight quotes and dashes, '...' for ellipses, whitespace runs to one space."""
    return normalize_with_origins(text)[0]


def normalize_with_origins(text: str) -> tuple[str, list[int]]:
    """The normalized text and, for each of its characters, the index in `text` of the character it comes from (so
    spans found in the normalized text point back into the original)."""
    out: list[str] = []
    origins: list[int] = []
    for match in _CLUSTER.finditer(text):
        for char in _normalize_cluster(match.group()):
            if char.isspace():
                if not out or out[-1] == " ":         # runs collapse to one space, leading ones go
                    continue
                char = " "
            elif char == "-" and out and out[-1] == "-":
                continue
            out.append(char)
            origins.append(match.start())
    if out and out[-1] == " ":
        out.pop()
        origins.pop()
    return "".join(out), origins


def detect_language(text: str) -> tuple[Language, dict]:
    """en / zh / other from the script mix: Han share of letters, else the share of common English words."""
    letters = len(_LETTER.findall(text))
    if letters == 0:
        return "other", {"letters": 0}
    han = len(_HAN.findall(text))
    words = _LATIN_WORD.findall(text)
    latin_letters = sum(len(w) for w in words)
    stats = {"letters": letters, "han_share": round(han / letters, 3), "latin_share": round(latin_letters / letters, 3)}
    if han / letters >= 0.5:
        return "zh", stats
    if latin_letters / letters >= 0.6 and words:
        function_share = sum(w.lower() in _ENGLISH_FUNCTION_WORDS for w in words) / len(words)
        stats["english_function_word_share"] = round(function_share, 3)
        if function_share >= 0.12:
            return "en", stats
    return "other", stats
