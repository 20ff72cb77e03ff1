"""The batch every model, loss and metric consumes (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    """Expert inputs, availability, caption tokens and (optionally) TeachText teacher tensors."""

    experts: dict[str, torch.Tensor]
    ind: dict[str, torch.Tensor]
    text: torch.Tensor
    text_token_mask: torch.Tensor
    query_masks: torch.Tensor | None = None
    distil_video: dict[int, dict[str, torch.Tensor]] | None = None
    distil_text: dict[int, dict[str, torch.Tensor]] | None = None
    video_ids: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str) -> Batch:
        """A copy with every tensor on `device`."""
        def move(tree):
            if tree is None:
                return None
            if isinstance(tree, dict):
                return {key: move(value) for key, value in tree.items()}
            return tree.to(device)
        return Batch(move(self.experts), move(self.ind), self.text.to(device),
                     self.text_token_mask.to(device), move(self.query_masks),
                     move(self.distil_video), move(self.distil_text), list(self.video_ids))
