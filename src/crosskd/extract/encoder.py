"""What every caption encoder is: captions in, one `[tokens, dim]` float32 array each out,
and a JSON record saying exactly which encoder it was (a dataset keeps it so that queries
are later embedded by the same one)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from crosskd.experts import named_text_feat

if TYPE_CHECKING:
    from crosskd.extract.requirements import Requirement

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-cased words of a caption (what word-vector encoders look up)."""
    return _WORD.findall(text.lower())


def is_word(text: str) -> bool:
    """Whether `text` is a word `words` can return (word-vector files keep only those)."""
    return _WORD.fullmatch(text) is not None


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

    @classmethod
    def requirements(cls, options: dict[str, Any]) -> list[Requirement]:
        """The models it loads with these options, located before anything is decoded
        (`crosskd.extract.preflight`); none for a weight-free encoder."""
        return []

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Refuse, once its requirements are located and before anything is decoded, options
        it would fail on only when the captions are encoded (after every video)."""

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
        """The `experts.text_feat` name its tokens are stored under: what made them and their
        width (`crosskd.experts.named_text_feat`), so the name says what they are."""
        return named_text_feat(self.name, self.dim)

    def record(self) -> dict[str, Any]:
        """A JSON-able description; `text_encoder_from_record` builds the same encoder."""
        return {"name": self.name, "options": self.options(), "dim": self.dim,
                "weights": self.weights(), "text_feat": self.text_feat,
                "versions": self.versions()}
