"""A hashed n-gram linear model: word 1-2-grams for English, character 1-3-grams for Chinese.

Stateless hashing keeps the stored model to one coefficient vector; the training recipe fits it and stores the
vector with the head's weights.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

NGRAM_SETTINGS = {
    "en": {"analyzer": "word", "ngram_range": (1, 2), "n_features": 2 ** 18},
    "zh": {"analyzer": "char", "ngram_range": (1, 3), "n_features": 2 ** 18},
}


def ngram_vectorizer(lang: str) -> HashingVectorizer:
    settings = NGRAM_SETTINGS[lang]
    return HashingVectorizer(analyzer=settings["analyzer"], ngram_range=settings["ngram_range"],
                             n_features=settings["n_features"], alternate_sign=False, norm="l2", lowercase=True)


def ngram_scores(lang: str, texts: list[str], coef: np.ndarray, bias: float) -> np.ndarray:
    """Linear n-gram logits for (typography-normalized) texts."""
    if not texts:
        return np.zeros(0, dtype=np.float32)
    features = ngram_vectorizer(lang).transform(texts)
    return (features @ coef.astype(np.float64) + bias).astype(np.float32)
