"""The batch every model, loss and metric consumes (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from crosskd.tree import leaves, map_leaves

#: TeachText teacher tensors: `{teacher index: {modality: tensor}}`.
TeacherTensors = dict[int, dict[str, torch.Tensor]]


@dataclass(kw_only=True)
class Batch:
    """Expert inputs, availability, caption tokens and (optionally) TeachText teacher tensors."""

    experts: dict[str, torch.Tensor]
    ind: dict[str, torch.Tensor]
    text: torch.Tensor
    text_token_mask: torch.Tensor
    query_masks: torch.Tensor | None = None
    distil_video: TeacherTensors | None = None
    distil_text: TeacherTensors | None = None
    video_ids: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on `device`."""
        return self.map_tensors(lambda tensor: tensor.to(device, non_blocking=non_blocking))

    def map_tensors(self, function: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """A copy with `function` applied to every tensor."""
        return map_leaves(function, self)

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor, in the order `map_tensors` visits them."""
        return list(leaves(self))
