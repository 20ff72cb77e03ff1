"""crosskd.inference: a trained model loaded from every checkpoint form, its caption side kept
apart (key for key the model's), and a split embedded and scored in chunks on any device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crosskd.checkpoint.original import save_original_checkpoint
from crosskd.checkpoint.run_state import BEST_NAME, save_run_state
from crosskd.config import as_experiment
from crosskd.data.retrieval import RetrievalData
from crosskd.data.synth import SynthSpec, example_config, write_synthetic
from crosskd.inference import (Precision, embed_captions, embed_videos, load_model, score_split,
                               scores_and_querybank, training_querybank)
from crosskd.models import build_model
from crosskd.models.ce_net import build_caption_embedder
from crosskd.models.similarity import cross_view_similarity

CPU = torch.device("cpu")
TRAINER = {"optimizer": {"type": "RAdam", "args": {"lr": 0.01}},
           "loss": {"type": "MaxMarginRankingLoss", "args": {"margin": 0.1, "fix_norm": True}},
           "trainer": {"save_dir": "runs", "tensorboard": False}}
#: the modules CENet.embed_text reads, by their names in the original's state dict
CAPTION_MODULES = ("text_pooling.", "ce.moe_fc.", "ce.text_GU.")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(folder, experiment, a random model in evaluation mode, its data) on tiny data."""
    folder = tmp_path_factory.mktemp("inference")
    spec = SynthSpec(videos=40, captions_per_video=3, fewer_captions_fraction=0.2,
                     caption_tokens=(2, 9), max_expert_tokens=6,
                     visual_dims={name: 10 for name in SynthSpec().visual_dims})
    write_synthetic(spec, folder / "MSRVTT")
    config = example_config(spec, folder / "MSRVTT", split_name="full-test", max_text_tokens=7)
    config["data_loader"]["args"]["batch_size"] = 8
    config.update(TRAINER)
    experiment = as_experiment(config)
    torch.manual_seed(0)
    model = build_model(experiment.model).eval()
    return folder, experiment, model, RetrievalData.load(experiment.data)


def test_every_checkpoint_form_loads_the_same_weights(tiny):
    folder, experiment, model, _ = tiny
    state = model.state_dict()
    save_run_state(folder / "run" / BEST_NAME, model_state=state, epoch=1,
                   config=experiment.raw, monitor_best=0.0)
    save_original_checkpoint(folder / "trained_model.pth", model, experiment.raw)
    for source in (folder / "run", folder / "run" / BEST_NAME, folder / "trained_model.pth"):
        loaded = load_model(experiment.model, source)
        assert not loaded.training
        assert list(loaded.state_dict()) == list(state)
        for key, value in loaded.state_dict().items():
            assert torch.equal(value, state[key]), (source, key)


def test_the_caption_side_is_the_models_caption_part_key_for_key(tiny):
    _, experiment, model, _ = tiny
    expected = [key for key in model.state_dict() if key.startswith(CAPTION_MODULES)]
    state = model.caption_embedder().state_dict()
    assert list(state) == expected
    captions = torch.randn(5, 7, model.dims.text_dim)
    alone = build_caption_embedder(experiment.model, {k: v.clone() for k, v in state.items()})
    with torch.inference_mode():
        ours, theirs = alone(captions), model.embed_text(captions)
    assert torch.equal(ours.embeddings, theirs.embeddings)
    assert torch.equal(ours.weights, theirs.weights)


def test_a_caption_state_missing_a_key_is_refused(tiny):
    _, experiment, model, _ = tiny
    state = dict(model.caption_embedder().state_dict())
    del state["ce.moe_fc.weight"]
    with pytest.raises(RuntimeError, match="ce.moe_fc.weight"):
        build_caption_embedder(experiment.model, state)


def test_caption_chunks_cover_every_slot_in_order(tiny):
    _, _, model, data = tiny
    split = data.eval
    with torch.inference_mode():
        chunks = list(embed_captions(model, split, CPU, caption_chunk=split.slots * 4))
        whole = model.embed_text(next(iter(split.batches(split.num_videos))).text)
    assert [start for start, _ in chunks] == list(range(0, split.num_videos, 4))
    embeddings = torch.cat([text.embeddings for _, text in chunks])
    np.testing.assert_allclose(embeddings.numpy(), whole.embeddings.numpy(), rtol=1e-5,
                               atol=1e-6)


def test_scores_do_not_depend_on_the_chunk_size(tiny):
    _, _, model, data = tiny
    one_video_at_a_time = score_split(model, data.eval, CPU, caption_chunk=1)
    np.testing.assert_allclose(one_video_at_a_time, score_split(model, data.eval, CPU),
                               rtol=1e-5, atol=1e-6)


def test_the_training_bank_is_the_one_evaluation_folds(tiny):
    _, _, model, data = tiny
    _, evaluation = scores_and_querybank(model, data, CPU, beta=20.0)
    video = embed_videos(model, data.eval, CPU)
    bank = training_querybank(model, data, video, CPU, beta=20.0)
    assert bank.size == evaluation.size
    np.testing.assert_array_equal(bank.active, evaluation.active)
    np.testing.assert_array_equal(bank.log_normaliser, evaluation.log_normaliser)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_embeds_and_scores_as_the_cpu(tiny):
    folder, experiment, model, data = tiny
    torch.save(model.state_dict(), folder / "weights.pth")
    on_gpu = load_model(experiment.model, folder / "weights.pth", "cuda")
    assert next(on_gpu.parameters()).is_cuda
    video = embed_videos(on_gpu, data.eval, torch.device("cuda"))
    assert video.embeddings.is_cuda
    with Precision().inference():
        _, text = next(embed_captions(on_gpu, data.eval, torch.device("cuda"), 240))
    assert text.embeddings.is_cuda
    np.testing.assert_allclose(cross_view_similarity(text, video).cpu().numpy(),
                               score_split(model, data.eval, CPU)[:len(text)], atol=1e-4)
    np.testing.assert_allclose(score_split(on_gpu, data.eval, torch.device("cuda")),
                               score_split(model, data.eval, CPU), atol=1e-4)
