"""Text an expert read or heard (OCR lines, a speech transcript) as the tokens of a token
expert: the dataset's own text encoder, so that words on screen, words spoken and words of a
query meet in one space, then a fixed projection to the published token width when the
encoder is wider (GPT-2's 768 -> 300)."""

from __future__ import annotations

from typing import Any

import numpy as np

from crosskd.extract.encoder import TextEncoder
from crosskd.extract.pretrained import fixed_projection


class TextTokens:
    """`text -> [tokens, dim]` float32 through `encoder` (and the recorded projection)."""

    def __init__(self, encoder: TextEncoder, dim: int) -> None:
        self.encoder, self.dim = encoder, dim
        self.projection = None if encoder.dim == dim else fixed_projection(encoder.dim, dim)

    def __call__(self, text: str) -> np.ndarray:
        (tokens,) = self.encoder.encode([text])
        if self.projection is not None:
            tokens = tokens @ self.projection
        return tokens.astype(np.float32)

    def record(self) -> dict[str, Any]:
        """Which encoder (and its weights: the cache must not reuse tokens of another) and
        projection made the tokens."""
        return {"text_encoder": self.encoder.name, "text_encoder_weights": self.encoder.weights(),
                "projection": None if self.projection is None else "qr-seed0"}
