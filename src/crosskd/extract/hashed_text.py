"""The weight-free `demo` caption encoder: every word gets a fixed pseudo-random unit vector
derived from a hash of the word, so any machine produces the same features with no download."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import numpy as np

from crosskd.experts import named_text_feat
from crosskd.extract.encoder import TextEncoder, stack_tokens, words

#: the width of the published word2vec features.
HASHED_DIM = 300


@lru_cache(maxsize=65536)
def _word_vector(word: str, dim: int) -> np.ndarray:
    """A unit vector read from SHAKE-256 of the word (the same bytes on every platform)."""
    raw = np.frombuffer(hashlib.shake_256(word.encode()).digest(4 * dim), "<u4")
    vector = raw / 2.0**31 - 1.0
    vector = (vector / np.linalg.norm(vector)).astype(np.float32)
    vector.setflags(write=False)
    return vector


class HashedWordEncoder(TextEncoder):
    """One token per word; the vector of a word depends on the word alone (SHAKE-256)."""

    name = "demo"

    def __init__(self, dim: int = HASHED_DIM) -> None:
        self.dim = int(dim)

    def encode(self, captions: list[str]) -> list[np.ndarray]:
        return [stack_tokens([_word_vector(word, self.dim) for word in words(caption)], self.dim)
                for caption in captions]

    def options(self) -> dict[str, Any]:
        return {"dim": self.dim}

    def weights(self) -> str:
        return "shake256-uniform"

    @property
    def text_feat(self) -> str:
        return named_text_feat("hashed-words", self.dim)
