"""The Collaborative Experts network (CE / CE+, and MoEE when collaborative gating is off).

Module names follow the original (`pooling`, `text_pooling`, `ce.moe_fc`,
`ce.video_dim_reduce`, `ce.g_reason_1`, `ce.g_reason_shared`, `ce.video_GU`, `ce.text_GU`),
so our state_dict is key-for-key the original's and published checkpoints load unchanged.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from crosskd.experts import ModelDims
from crosskd.models.collaborative_gating import collaborative_embeddings, gate_mlp_layers
from crosskd.models.embeddings import TextEmbedding, VideoEmbedding
from crosskd.models.gating import GatedEmbeddingUnit, GatedEmbeddingUnitReasoning, ReduceDim
from crosskd.models.mixture import mixture_weights
from crosskd.models.netvlad import NetVLAD
from crosskd.models.pooling import pooling_layer
from crosskd.models.similarity import similarity_matrices
from crosskd.models.spec import ModelSpec
from crosskd.ops import shared_input_linear


class CollaborativeExperts(nn.Module):
    """Per-expert video and text embedding units plus the mixture weights (the original `ce`)."""

    def __init__(self, dims: ModelDims, shared_dim: int, collaborative: bool,
                 num_g_layers: int) -> None:
        super().__init__()
        self.modalities = dims.modalities
        self.collaborative = collaborative
        self.moe_fc = nn.Linear(dims.text_dim, len(dims.modalities))
        in_dims = [dims.expert_dims[m][0] for m in dims.modalities]
        if collaborative:
            self.out_dims = tuple(shared_dim for _ in in_dims)
            self.video_dim_reduce = nn.ModuleList(ReduceDim(d, shared_dim) for d in in_dims)
            self.g_reason_1 = nn.Linear(2 * shared_dim, shared_dim)
            self.g_reason_shared = nn.Sequential(*gate_mlp_layers(shared_dim, num_g_layers))
            self.video_GU = nn.ModuleList(
                GatedEmbeddingUnitReasoning(shared_dim) for _ in in_dims)
        else:
            self.out_dims = tuple(dims.expert_dims[m][1] for m in dims.modalities)
            self.video_GU = nn.ModuleList(
                GatedEmbeddingUnit(i, o) for i, o in zip(in_dims, self.out_dims))
        self.text_GU = nn.ModuleList(GatedEmbeddingUnit(dims.text_dim, o) for o in self.out_dims)

    def _stack(self, per_expert: Sequence[torch.Tensor]) -> torch.Tensor:
        """Stack `[B, D_m]` embeddings to `[B, E, max D]`, zero-padding narrower experts."""
        width = max(self.out_dims)
        return torch.stack([x if x.shape[1] == width else F.pad(x, (0, width - x.shape[1]))
                            for x in per_expert], dim=1)

    def embed_video(self, experts: list[torch.Tensor], availability: torch.Tensor
                    ) -> VideoEmbedding:
        """Embed pooled experts (modality order, missing rows zeroed) given availability `[B, E]`."""
        if self.collaborative:
            reduced = torch.stack([layer(x) for layer, x in zip(self.video_dim_reduce, experts)],
                                  dim=1)
            embedded = collaborative_embeddings(reduced, availability, self.g_reason_1,
                                                self.g_reason_shared, self.video_GU).unbind(1)
        else:
            embedded = [unit(x) for unit, x in zip(self.video_GU, experts)]
        return VideoEmbedding(self.modalities, self._stack(embedded), availability, self.out_dims)

    def embed_text(self, pooled: torch.Tensor, captions_per_video: int) -> TextEmbedding:
        """Embed pooled captions `[N, text_dim]` once per expert, with their mixture weights."""
        projected = shared_input_linear(pooled, [unit.fc for unit in self.text_GU])
        embedded = [unit.gate_projected(x) for unit, x in zip(self.text_GU, projected)]
        return TextEmbedding(self.modalities, self._stack(embedded),
                             mixture_weights(pooled, self.moe_fc), self.out_dims,
                             captions_per_video)


class CENet(nn.Module):
    """Video-text retrieval network: NetVLAD pooling, per-expert embeddings, mixture scoring."""

    def __init__(self, dims: ModelDims, shared_dim: int, text_clusters: int,
                 text_ghost_clusters: int, collaborative: bool = True,
                 num_g_layers: int = 3) -> None:
        super().__init__()
        self.dims = dims
        self.modalities = dims.modalities
        self.pooling = nn.ModuleDict({
            name: pooling_layer(kind, dims.raw_input_dims[name], size)
            for name, (kind, size) in dims.pooled.items()})
        self.text_pooling = NetVLAD(dims.text_dim, text_clusters, text_ghost_clusters)
        pooled_dims = ModelDims(dims.modalities, dims.expert_dims, dims.raw_input_dims,
                                self.text_pooling.out_dim, dims.pooled)
        self.ce = CollaborativeExperts(pooled_dims, shared_dim, collaborative, num_g_layers)

    def embed_videos(self, experts: Mapping[str, torch.Tensor], ind: Mapping[str, torch.Tensor]
                     ) -> VideoEmbedding:
        """Embed a batch of videos; rows with ind == 0 are treated as zeros (NaNs allowed there)."""
        pooled, available = [], []
        for name in self.modalities:
            features = experts[name]
            present = torch.as_tensor(ind[name], device=features.device).to(features.dtype)
            keep = (present > 0).reshape(-1, *([1] * (features.dim() - 1)))
            features = torch.where(keep, features, 0.0)  # a scalar: no fill kernel per call
            if name in self.pooling:
                features = self.pooling[name](features)
            pooled.append(features)
            available.append(present)
        return self.ce.embed_video(pooled, torch.stack(available, dim=1))

    def embed_text(self, text: torch.Tensor) -> TextEmbedding:
        """Embed captions `[B, C, tokens, text_dim]` (or `[N, tokens, text_dim]`, C = 1)."""
        captions_per_video = text.shape[1] if text.dim() == 4 else 1
        tokens = text.reshape(-1, *text.shape[-2:])
        return self.ce.embed_text(self.text_pooling(tokens), captions_per_video)

    def caption_embedder(self) -> CaptionEmbedder:
        """The caption side of this model, sharing its weights (what search keeps of it)."""
        return CaptionEmbedder(self)

    def forward(self, experts: Mapping[str, torch.Tensor], ind: Mapping[str, torch.Tensor],
                text: torch.Tensor, text_token_mask: torch.Tensor | None = None
                ) -> dict[str, Any]:
        """The original's output dict (`text_token_mask` is accepted and unused, as there)."""
        if self.training and text.shape[1] != 1:
            raise ValueError(f"training batches hold one caption per video, got {text.shape[1]}")
        text_embedding = self.embed_text(text)
        return self.outputs(text_embedding, self.embed_videos(experts, ind))

    def outputs(self, text_embedding: TextEmbedding, video_embedding: VideoEmbedding
                ) -> dict[str, Any]:
        """The output dict of embedded captions and videos (distributed training joins every
        rank's embeddings first, crosskd.train.distributed)."""
        conf, text_matrix, video_matrix = similarity_matrices(text_embedding, video_embedding)
        return {
            "modalities": list(self.modalities),
            "cross_view_conf_matrix": conf,
            "cross_view_text_matrix": text_matrix,
            "cross_view_vid_matrix": video_matrix,
            "text_embds": text_embedding.as_dict(),
            "vid_embds": video_embedding.as_dict(),
        }


class CaptionEmbedder(nn.Module):
    """A CENet's caption side: token pooling, per-expert text units and mixture weights.

    It holds the CENet's own modules under the CENet's names, so its state dict is the
    caption part of the CENet's, key for key, and a caption-only state dict loads into it
    strictly. Captions are embedded by the CENet's own `embed_text`, so a query embeds as
    evaluation embeds captions.
    """

    def __init__(self, model: CENet) -> None:
        super().__init__()
        self.text_pooling = model.text_pooling
        self.ce = nn.ModuleDict({"moe_fc": model.ce.moe_fc, "text_GU": model.ce.text_GU})
        self.text_dim = model.dims.text_dim
        self._embed_text = model.embed_text  # a bound method: the CENet is no submodule

    def forward(self, text: torch.Tensor) -> TextEmbedding:
        """Embed captions `[B, C, tokens, text_dim]` (or `[N, tokens, text_dim]`, C = 1)."""
        return self._embed_text(text)


def build_model(spec: ModelSpec) -> CENet:
    """Build the CENet a model part describes, with freshly initialised weights."""
    return CENet(spec.dims, shared_dim=spec.shared_dim, text_clusters=spec.text_clusters,
                 text_ghost_clusters=spec.text_ghost_clusters, collaborative=spec.collaborative,
                 num_g_layers=spec.num_g_layers)


def build_caption_embedder(spec: ModelSpec, state: Mapping[str, torch.Tensor]
                           ) -> CaptionEmbedder:
    """The caption side of the CENet `spec` describes, holding `state` (a CaptionEmbedder's
    state dict, loaded strictly), in evaluation mode. The rest of the model is built without
    storage (meta device), so only the caption weights take memory."""
    with torch.device("meta"):
        embedder = build_model(spec).caption_embedder()
    embedder.load_state_dict(state, assign=True)
    return embedder.eval()
