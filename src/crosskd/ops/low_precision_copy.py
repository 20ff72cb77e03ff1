"""A weight's copy in autocast's precision, kept between steps instead of cast in every one.

Under bfloat16 autocast every product casts its float32 weight to bfloat16 again: at MSRVTT
CE+ size that is a read of 0.96 GB of text projections and a write of half that, twice per
step (forward, and backward's input gradient). A `LowPrecisionCopy` keeps the cast: the
optimizer's update refreshes the rows it has just written while they are in cache
(crosskd.train.weight_gradients), and any other change of the weight (a checkpoint loaded, an
update elsewhere) is caught by the weight's version counter and cast anew. The float32
weight stays the one the optimizer updates and checkpoints save.
"""

from __future__ import annotations

import torch
from torch import nn


class LowPrecisionCopy:
    """A weight's copy in `dtype`, current for the weight's version it was taken at."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.tensor: torch.Tensor | None = None
        self._version = -1

    @torch.no_grad()
    def current(self, weight: torch.Tensor) -> torch.Tensor:
        """The copy of `weight` as it is now (cast again where it changed since)."""
        if self.tensor is None or self.tensor.shape != weight.shape:
            self.tensor = weight.detach().to(self.dtype)
        elif self._version != weight._version:
            self.tensor.copy_(weight.detach())
        self._version = weight._version
        return self.tensor

    @torch.no_grad()
    def refresh_rows(self, weight: torch.Tensor, rows: slice) -> None:
        """Copy rows `rows` of `weight` just updated (call `settled` once all are)."""
        if self.tensor is not None:
            self.tensor[rows].copy_(weight.detach()[rows])

    def settled(self, weight: torch.Tensor) -> None:
        """Every updated row was refreshed: the copy is current for `weight` as it is now."""
        if self.tensor is not None:
            self._version = weight._version


def weight_in(layer: nn.Linear, dtype: torch.dtype) -> torch.Tensor:
    """`layer.weight` in `dtype`: its kept copy where the runtime gave it one (`low_copy`),
    else a cast."""
    copy = getattr(layer, "low_copy", None)
    if copy is not None and copy.dtype == dtype:
        return copy.current(layer.weight)
    return layer.weight.to(dtype)


def autocast_copy(layer: nn.Linear) -> torch.Tensor | None:
    """The layer's kept low-precision weight, current, where CPU autocast runs in its dtype;
    else None."""
    copy = getattr(layer, "low_copy", None)
    if (copy is None or layer.weight.device.type != "cpu"
            or not torch.is_autocast_enabled("cpu")
            or torch.get_autocast_dtype("cpu") != copy.dtype):
        return None
    return copy.current(layer.weight)
