"""Captions as word vectors from a local file: GloVe text, word2vec text or word2vec binary
(`crosskd.extract.word_vector_files` tells them apart); words the file lacks are skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crosskd.data.fingerprint import content_digest
from crosskd.experts import named_text_feat
from crosskd.extract.encoder import TextEncoder, stack_tokens, words
from crosskd.extract.word_vector_files import load_word_vectors


class Word2VecEncoder(TextEncoder):
    """One token per known word, its vector from the file."""

    name = "word2vec"

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self.vectors = load_word_vectors(Path(path))
        self.dim = self.vectors.dim
        self._digest = content_digest(Path(path))

    def encode(self, captions: list[str]) -> list[np.ndarray]:
        return [stack_tokens([self.vectors[w] for w in words(c) if w in self.vectors], self.dim)
                for c in captions]

    def options(self) -> dict[str, Any]:
        return {"path": self.path}

    def weights(self) -> str:
        return f"sha256:{self._digest}"

    @property
    def text_feat(self) -> str:
        return named_text_feat("word-vectors", self.dim)
