"""What every caption encoder is: captions in, one `[tokens, dim]` float32 array each out,
and a JSON record saying exactly which encoder it was (a dataset keeps it so that queries
are later embedded by the same one)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from crosskd.errors import UserError
from crosskd.experts import TEXT_FEATURE_DIMS

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-cased words of a caption (what word-vector encoders look up)."""
    return _WORD.findall(text.lower())


def is_word(text: str) -> bool:
    """Whether `text` is a word `words` can return (word-vector files keep only those)."""
    return _WORD.fullmatch(text) is not None


def published_text_feat(preferred: str, dim: int, encoder: str) -> str:
    """The `experts.text_feat` name a dataset stores tokens of width `dim` under.

    train.py (and the original) read a text model's width from its name, so the name must be
    a known one of that width: `preferred` when it is, else the first known name that is.
    """
    if TEXT_FEATURE_DIMS.get(preferred) == dim:
        return preferred
    for name, width in TEXT_FEATURE_DIMS.items():
        if width == dim:
            return name
    widths = ", ".join(str(width) for width in sorted(set(TEXT_FEATURE_DIMS.values())))
    raise UserError(f"text encoder {encoder!r} gives {dim}-d tokens, but train.py knows text "
                    f"features of widths {widths} only; pick a model of one of those widths")


def stack_tokens(vectors: list[np.ndarray], dim: int) -> np.ndarray:
    """`[tokens, dim]` float32; one zero token for a caption with no usable word."""
    if not vectors:
        return np.zeros((1, dim), np.float32)
    return np.stack(vectors).astype(np.float32, copy=False)


class TextEncoder(ABC):
    """A caption encoder from the registry (`crosskd.extract.text_encoders.TEXT_ENCODERS`)."""

    #: the registry name (`--text-encoder NAME`).
    name: ClassVar[str]
    #: token width of every array `encode` returns.
    dim: int

    @abstractmethod
    def encode(self, captions: list[str]) -> list[np.ndarray]:
        """One `[tokens, dim]` float32 array per caption, in order."""

    @abstractmethod
    def options(self) -> dict[str, Any]:
        """The JSON-able keyword arguments that build this encoder again."""

    @abstractmethod
    def weights(self) -> str:
        """What fixes the encoder's numbers: a weights tag, a file hash, or a scheme name."""

    def versions(self) -> dict[str, str]:
        """Versions of the libraries whose code shapes the output."""
        return {"numpy": np.__version__}

    @property
    def text_feat(self) -> str:
        """The `experts.text_feat` name its tokens are stored under."""
        return published_text_feat(self.name, self.dim, self.name)

    def record(self) -> dict[str, Any]:
        """A JSON-able description; `text_encoder_from_record` builds the same encoder."""
        return {"name": self.name, "options": self.options(), "dim": self.dim,
                "weights": self.weights(), "text_feat": self.text_feat,
                "versions": self.versions()}
