"""Similarity matrices between per-expert embeddings, with the original's weighting rules.

Caption t and video v score sum_e w[t, e] * avail[v, e] * <text_e(t), video_e(v)>, with the
weights w * avail renormalised over the experts of that pair. One matrix product over the
concatenated weighted experts gives every numerator at once.
"""

from __future__ import annotations

import torch

from crosskd.models.embeddings import TextEmbedding, VideoEmbedding


def mixture_inner_products(left: torch.Tensor, weights: torch.Tensor, right: torch.Tensor,
                           availability: torch.Tensor) -> torch.Tensor:
    """`[N, B]` matrix of sum_e w[n,e] a[b,e] <left[n,e], right[b,e]> / sum_e w[n,e] a[b,e]."""
    weighted_left = (left * weights[..., None]).flatten(1)
    masked_right = (right * availability[..., None]).flatten(1)
    return (weighted_left @ masked_right.T) / (weights @ availability.T)


def summed_inner_products(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """`[N, B]` matrix of sum_e <left[n,e], right[b,e]> (every expert weighted 1)."""
    return left.flatten(1) @ right.flatten(1).T


def cross_view_similarity(text: TextEmbedding, video: VideoEmbedding) -> torch.Tensor:
    """Caption-video similarities `[N, B]` (rows video-major when captions_per_video > 1)."""
    availability = video.availability.to(text.weights.dtype)
    return mixture_inner_products(text.embeddings, text.weights, video.embeddings, availability)


def caption_caption_similarity(text: TextEmbedding, video: VideoEmbedding) -> torch.Tensor:
    """Training-batch caption-caption matrix `[B, B]`, weighted like the caption-video one.

    Entry (i, j) weights expert e by caption i's mixture weight and video j's availability,
    as the original does for one caption per video.
    """
    availability = video.availability.to(text.weights.dtype)
    return mixture_inner_products(text.embeddings, text.weights, text.embeddings, availability)


def video_video_similarity(text: TextEmbedding, video: VideoEmbedding) -> torch.Tensor:
    """Training-batch video-video matrix `[B, B]` with caption i's weights on row i."""
    availability = video.availability.to(text.weights.dtype)
    return mixture_inner_products(video.embeddings, text.weights, video.embeddings, availability)


def similarity_matrices(text: TextEmbedding, video: VideoEmbedding
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The original's (caption-video, caption-caption, video-video) matrices.

    With one caption per video and as many captions as videos the within-modality matrices
    are mixture-weighted; otherwise (evaluation with several captions) they are plain sums
    of the per-expert inner products.
    """
    conf = cross_view_similarity(text, video)
    if text.captions_per_video == 1 and len(text) == len(video):
        return (conf, caption_caption_similarity(text, video),
                video_video_similarity(text, video))
    return (conf, summed_inner_products(text.embeddings, text.embeddings),
            summed_inner_products(video.embeddings, video.embeddings))
