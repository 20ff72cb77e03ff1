"""Similarity matrices follow the original's mixture weighting and availability rules."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.models.embeddings import TextEmbedding, VideoEmbedding
from crosskd.models.similarity import (caption_caption_similarity, cross_view_similarity,
                                       similarity_matrices, video_video_similarity)


def random_embeddings(num_text, num_video, experts, dim, seed, captions=1):
    generator = torch.Generator().manual_seed(seed)
    names = tuple(f"e{i}" for i in range(experts))
    weights = torch.softmax(torch.randn(num_text, experts, generator=generator), dim=1)
    availability = (torch.rand(num_video, experts, generator=generator) > 0.4).float()
    availability[:, 0] = 1  # every video keeps at least one expert
    text = TextEmbedding(names, torch.randn(num_text, experts, dim, generator=generator),
                         weights, (dim,) * experts, captions)
    video = VideoEmbedding(names, torch.randn(num_video, experts, dim, generator=generator),
                           availability, (dim,) * experts)
    return text, video


def looped(left, weights, right, availability):
    out = torch.zeros(left.shape[0], right.shape[0])
    for n in range(left.shape[0]):
        for b in range(right.shape[0]):
            w = weights[n] * availability[b]
            w = w / w.sum()
            out[n, b] = sum(w[e] * left[n, e] @ right[b, e] for e in range(left.shape[1]))
    return out


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), b=st.integers(1, 5), e=st.integers(1, 4), seed=st.integers(0, 99))
def test_cross_view_similarity_equals_the_explicit_weighted_sum(n, b, e, seed):
    text, video = random_embeddings(n, b, e, 3, seed)
    torch.testing.assert_close(
        cross_view_similarity(text, video),
        looped(text.embeddings, text.weights, video.embeddings, video.availability))


def test_training_batch_within_modality_matrices_are_mixture_weighted():
    text, video = random_embeddings(5, 5, 3, 4, seed=3)
    conf, text_matrix, video_matrix = similarity_matrices(text, video)
    expected_text = looped(text.embeddings, text.weights, text.embeddings, video.availability)
    expected_video = looped(video.embeddings, text.weights, video.embeddings, video.availability)
    torch.testing.assert_close(text_matrix, expected_text)
    torch.testing.assert_close(caption_caption_similarity(text, video), expected_text)
    torch.testing.assert_close(video_matrix, expected_video)
    torch.testing.assert_close(video_video_similarity(text, video), expected_video)


def test_several_captions_give_unweighted_within_modality_sums():
    text, video = random_embeddings(6, 3, 2, 4, seed=5, captions=2)
    conf, text_matrix, video_matrix = similarity_matrices(text, video)
    assert conf.shape == (6, 3)
    torch.testing.assert_close(text_matrix, torch.einsum("ned,med->nm", text.embeddings,
                                                         text.embeddings))
    torch.testing.assert_close(video_matrix, torch.einsum("ned,med->nm", video.embeddings,
                                                          video.embeddings))
    assert text.as_dict()["e0"].shape == (3, 2, 4)
