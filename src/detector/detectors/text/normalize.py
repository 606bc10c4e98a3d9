"""Typography normalization and language detection applied before any text feature, in training and inference.

The evaluation straightens quotes and dashes and collapses whitespace; doing the same here means em dashes, curly
apostrophes, blank lines or exotic spaces cannot become what the model keys on.
"""

from __future__ import annotations

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
_SPACES = re.compile(r"\s+")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_ENGLISH_FUNCTION_WORDS = frozenset(
    "the of and to a in is that it for was on with as be by this are at from or an have not but which "
    "they you he she we his her their its has had were been will would can there".split())


def normalize_typography(text: str) -> str:
    """NFKC (as the text decoder does), straight quotes and dashes, '...' for ellipses, whitespace runs to one space."""
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY)
    text = re.sub(r"-{2,}", "-", text)
    return _SPACES.sub(" ", text).strip()


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
