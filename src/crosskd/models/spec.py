"""What the network is built from: the typed model part of a config (crosskd.config.model)."""

from __future__ import annotations

from dataclasses import dataclass

from crosskd.experts import ModelDims


@dataclass(frozen=True)
class ModelSpec:
    """Widths of every expert and of the text, and the architecture's own settings."""

    dims: ModelDims
    shared_dim: int | None
    text_clusters: int
    text_ghost_clusters: int = 0
    collaborative: bool = True
    num_g_layers: int = 3
