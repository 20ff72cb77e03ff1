"""The batch every model, loss and metric consumes (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

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
        return self.map_tensors(lambda tensor: tensor.to(device))

    def map_tensors(self, function: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """A copy with `function` applied to every tensor."""
        def apply(tree):
            if tree is None:
                return None
            if isinstance(tree, dict):
                return {key: apply(value) for key, value in tree.items()}
            return function(tree)
        return Batch(apply(self.experts), apply(self.ind), function(self.text),
                     function(self.text_token_mask), apply(self.query_masks),
                     apply(self.distil_video), apply(self.distil_text), list(self.video_ids))

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor, in the order `map_tensors` visits them."""
        found: list[torch.Tensor] = []
        self.map_tensors(lambda tensor: found.append(tensor) or tensor)
        return found
