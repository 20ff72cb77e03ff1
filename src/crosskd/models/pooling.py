"""The layer that pools each model-side temporal aggregation (crosskd.experts.POOLINGS).

To add one: register its name in crosskd.experts.POOLINGS and its layer here; a layer takes
(token width, size) and maps `[B, tokens, width]` to `[B, pooled width]`.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from crosskd.experts import VLAD
from crosskd.models.netvlad import NetVLAD

POOLING_LAYERS: dict[str, Callable[[int, int], nn.Module]] = {VLAD.name: NetVLAD}


def pooling_layer(kind: str, token_width: int, size: int) -> nn.Module:
    """A fresh pooling layer of `kind` for tokens of `token_width`."""
    return POOLING_LAYERS[kind](token_width, size)
