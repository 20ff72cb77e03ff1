"""CENet with the original's trained weights reproduces the original's forward outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crosskd.checkpoint import load_original_checkpoint
from crosskd.config import load_config, model_spec
from crosskd.models import build_model
from crosskd.models.similarity import cross_view_similarity
from crosskd.models.embeddings import TextEmbedding, VideoEmbedding

TOL = {"rtol": 1e-5, "atol": 1e-5}
MATRICES = ("cross_view_conf_matrix", "cross_view_text_matrix", "cross_view_vid_matrix")


@pytest.fixture(scope="module")
def golden(conformance):
    return np.load(conformance / "forward_golden.npz")


@pytest.fixture()
def model(conformance):
    net = build_model(model_spec(load_config(conformance / "configs" / "msrvtt-mini-cecap.json")))
    checkpoint = load_original_checkpoint(
        conformance / "checkpoints" / "msrvtt-mini-cecap_seed0_trained_model.pth")
    net.load_state_dict(checkpoint.state_dict)
    return net


def inputs(golden, mode):
    def group(prefix):
        return {key.split("/", 1)[1]: torch.from_numpy(golden[key]) for key in golden.files
                if key.startswith(prefix)}
    return (group(f"{mode}_in_experts/"), group(f"{mode}_in_ind/"),
            torch.from_numpy(golden[f"{mode}_in_text"]))


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_forward_matches_original(model, golden, mode):
    model.train(mode == "train")
    experts, ind, text = inputs(golden, mode)
    with torch.no_grad():
        out = model(experts, ind, text)
    for name in MATRICES:
        np.testing.assert_allclose(out[name].numpy(), golden[f"{mode}_out_{name}"], **TOL,
                                   err_msg=name)
    for side in ("vid_embds", "text_embds"):
        assert set(out[side]) == set(model.modalities)
        for modality, value in out[side].items():
            np.testing.assert_allclose(value.numpy(), golden[f"{mode}_out_{side}/{modality}"],
                                       **TOL, err_msg=f"{side}/{modality}")


def test_missing_expert_rows_may_hold_nan_and_inputs_are_not_modified(model, golden):
    model.eval()
    experts, ind, text = inputs(golden, "eval")
    assert any(torch.isnan(x).any() for x in experts.values())
    before = {k: v.clone() for k, v in experts.items()}
    with torch.no_grad():
        out = model(experts, ind, text)
    assert not torch.isnan(out["cross_view_conf_matrix"]).any()
    for key, value in experts.items():
        torch.testing.assert_close(value, before[key], equal_nan=True)


def test_embed_once_then_score_in_chunks_equals_forward(model, golden):
    model.eval()
    experts, ind, text = inputs(golden, "eval")
    with torch.no_grad():
        full = model(experts, ind, text)["cross_view_conf_matrix"]
        videos = VideoEmbedding.concat([
            model.embed_videos({k: v[i:i + 3] for k, v in experts.items()},
                               {k: v[i:i + 3] for k, v in ind.items()})
            for i in range(0, 8, 3)])
        captions = TextEmbedding.concat([model.embed_text(text[i:i + 5]) for i in range(0, 8, 5)])
        chunked = torch.cat([cross_view_similarity(
            TextEmbedding(captions.modalities, captions.embeddings[r:r + 50],
                          captions.weights[r:r + 50], captions.dims), videos)
            for r in range(0, len(captions), 50)])
    assert captions.embeddings.shape == (160, 7, 32) and captions.weights.shape == (160, 7)
    assert videos.availability.shape == (8, 7)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-6)


def test_training_rejects_several_captions_per_video(model, golden):
    model.train()
    experts, ind, text = inputs(golden, "eval")
    with pytest.raises(ValueError, match="one caption per video"):
        model(experts, ind, text)
