"""What every video expert is: the input it reads (frames, clips, audio, speech), the kind of
feature it gives (one fixed vector, or a token sequence the model pools with NetVLAD), its
width, and a provenance record of exactly what produced the numbers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from crosskd.errors import UserError
from crosskd.experts import TOKEN_DIMS
from crosskd.extract.decode import Decoded

if TYPE_CHECKING:
    from crosskd.extract.requirements import Requirement

INPUT_KINDS = ("frames", "clips", "audio", "speech")
OUTPUT_KINDS = ("fixed", "tokens")


@dataclass
class Result:
    """One expert's output for one video: the feature (None: missing) and any text it read."""

    value: np.ndarray | None
    text: str | None = None
    #: `[frames, dim]` per-frame features of a frame expert that keeps them (CLIP's).
    frames: np.ndarray | None = None
    #: the text with times and confidences (OCR lines, a transcript's words), JSON-able.
    timed_text: list[dict[str, Any]] | None = None


#: the cache and file suffix of an expert's per-frame features.
FRAMES = "#frames"


class Expert(ABC):
    """A video expert of the registry (`crosskd.extract.experts.EXPERTS`).

    Subclasses set the class attributes and `dim`, and implement `compute`. A token expert
    is stored under one of the token names the model pools (`crosskd.experts.TOKEN_DIMS`),
    at that name's width; a fixed one under `<type>.<model>.0`, whose file name follows the
    published layout.
    """

    name: ClassVar[str]
    input_kind: ClassVar[str]
    output_kind: ClassVar[str]
    #: the config expert this one is stored as ("audio", or "<type>.<model>.0").
    modality: ClassVar[str]
    #: whether it also keeps per-frame features (a `<model>-frames.pickle` beside its file).
    keeps_frames: ClassVar[bool] = False
    #: whether its frames are decoded at its own pixel_dim rather than the largest of all
    #: experts (OCR: text needs more pixels than image models, which need not pay for them).
    own_pixel_dim: ClassVar[bool] = False
    dim: int
    #: frames (or clips) per second it reads; clip_len frames per clip.
    rate: float = 2.0
    clip_len: int = 1
    pixel_dim: int = 224

    @classmethod
    def variant(cls, options: dict[str, Any]) -> tuple[type[Expert], dict[str, Any]]:
        """The class that takes these `--expert-option`s and the options left for it: an
        expert with several backends picks one here (whisper's `backend=`)."""
        return cls, options

    @classmethod
    def requirements(cls, options: dict[str, Any]) -> list[Requirement]:
        """The models it loads with these options, located before anything is decoded
        (`crosskd.extract.preflight`); none for a weight-free expert."""
        return []

    @abstractmethod
    def compute(self, video: Decoded) -> Result:
        """The feature of one decoded video (`[dim]` fixed, `[tokens, dim]` tokens)."""

    def options(self) -> dict[str, Any]:
        """The JSON-able keyword arguments that build it again."""
        return {}

    def weights(self) -> str:
        """What fixes its numbers: a weights tag or file hash, or the weight-free method."""
        return "weight-free"

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def check(self) -> None:
        """Refuse a token expert stored under a name or width the model cannot pool."""
        if self.output_kind == "tokens" and TOKEN_DIMS.get(self.modality) != self.dim:
            raise UserError(f"expert {self.name!r}: token experts are stored as one of "
                            f"{TOKEN_DIMS} at that width; it gives {self.modality} at {self.dim}")

    def aggregation(self, decode_pixel_dim: int) -> dict[str, Any]:
        """Its `feat_aggregation` config entry (for a fixed expert this names its file)."""
        if self.output_kind == "tokens":
            return {"model": self.modality, "flaky": True, "temporal": "vlad", "type": "embed",
                    "binarise": False, "feat_dims": {"embed": self.dim}}
        stride = self.clip_len if self.input_kind == "clips" else 1
        rate = int(self.rate) if float(self.rate).is_integer() else self.rate
        return {"fps": rate, "pixel_dim": decode_pixel_dim, "stride": stride, "offset": 0,
                "temporal": "avg", "type": "embed", "aggregate": "concat",
                "aggregate-axis": 1, "feat_dims": {"embed": self.dim}}

    def provenance(self) -> dict[str, Any]:
        """Everything that produced its features, for the dataset's extraction.json."""
        return {"name": self.name, "modality": self.modality, "input": self.input_kind,
                "output": self.output_kind, "dim": self.dim, "options": self.options(),
                "weights": self.weights(), "fps": self.rate, "clip_len": self.clip_len,
                "pixel_dim": self.pixel_dim, "versions": self.versions()}


def clips(frames: np.ndarray, clip_len: int) -> np.ndarray:
    """`[T, H, W, 3]` -> `[N, clip_len, H, W, 3]` consecutive clips (the last one padded by
    repeating its final frame; a video shorter than one clip gives one clip)."""
    count = max(1, -(-len(frames) // clip_len))
    pad = count * clip_len - len(frames)
    if pad:
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
    return frames.reshape(count, clip_len, *frames.shape[1:])
