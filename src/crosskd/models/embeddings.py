"""Per-expert embeddings of videos and captions, the currency between model and similarity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass
class VideoEmbedding:
    """Videos embedded once per expert.

    `embeddings` `[B, E, D]` (experts narrower than D are zero-padded, which keeps every
    inner product), `availability` `[B, E]` (1 = the video has this expert), `dims` the true
    width of each expert's embedding.
    """

    modalities: tuple[str, ...]
    embeddings: torch.Tensor
    availability: torch.Tensor
    dims: tuple[int, ...]

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The original's `vid_embds`: modality -> `[B, D_m]`."""
        return {name: self.embeddings[:, i, :dim]
                for i, (name, dim) in enumerate(zip(self.modalities, self.dims))}

    @classmethod
    def concat(cls, parts: Sequence["VideoEmbedding"]) -> "VideoEmbedding":
        """Join chunks embedded separately (e.g. during evaluation) along the video axis."""
        first = parts[0]
        return cls(first.modalities, torch.cat([p.embeddings for p in parts]),
                   torch.cat([p.availability for p in parts]), first.dims)


@dataclass
class TextEmbedding:
    """Captions embedded once per expert.

    `embeddings` `[N, E, D]` with N = videos x `captions_per_video` (video-major),
    `weights` `[N, E]` the mixture-of-experts weights of each caption.
    """

    modalities: tuple[str, ...]
    embeddings: torch.Tensor
    weights: torch.Tensor
    dims: tuple[int, ...]
    captions_per_video: int = 1

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The original's `text_embds`: modality -> `[B, captions_per_video, D_m]`."""
        return {name: self.embeddings[:, i, :dim].reshape(-1, self.captions_per_video, dim)
                for i, (name, dim) in enumerate(zip(self.modalities, self.dims))}

    @classmethod
    def concat(cls, parts: Sequence["TextEmbedding"]) -> "TextEmbedding":
        """Join chunks embedded separately along the caption axis."""
        first = parts[0]
        return cls(first.modalities, torch.cat([p.embeddings for p in parts]),
                   torch.cat([p.weights for p in parts]), first.dims, first.captions_per_video)
