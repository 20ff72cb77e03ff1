"""bfloat16 autocast and torch.compile, switched on by the config, against exact float32.

Tolerances (tiny CE+ model, seeded, 30 test videos x 4 captions):
* bf16 evaluation: every similarity within 2% of the largest |similarity| of float32, and
  every retrieval metric within 3 points (R@K in %) / 1 rank (MedR, MeanR);
* bf16 training loss: within 5% of the float32 loss on the same batch and weights;
* torch.compile: the same loss and gradients as eager within 1e-5 (relative).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from crosskd.config import data_spec, model_spec, objective_spec
from crosskd.data.retrieval import RetrievalData
from crosskd.data.synth import SynthSpec, example_config, write_synthetic
from crosskd.losses import build_objective
from crosskd.models import build_model
from crosskd.data.sampling import EpochSampler
from crosskd.inference import Precision, score_split
from crosskd.train.runtime import Runtime
from crosskd.train.evaluate import evaluate

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A seeded tiny model, its config and data (full-test: 30 videos x 4 captions)."""
    spec = SynthSpec(videos=100, captions_per_video=4, caption_tokens=(2, 6),
                     max_expert_tokens=4, visual_dims={n: 12 for n in SynthSpec().visual_dims})
    root = tmp_path_factory.mktemp("acc") / "MSRVTT"
    write_synthetic(spec, root)
    config = example_config(spec, root, split_name="full-test", max_text_tokens=6)
    config.update({"loss": {"type": "MaxMarginRankingLoss",
                            "args": {"margin": 0.1, "fix_norm": True}},
                   "ranking_loss": True,
                   "ranking_params": {"cap_w": 1.0, "cap_t": 5.0, "vid_w": 0.0, "vid_t": 5.0}})
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield config, build_model(model_spec(config)), RetrievalData.load(data_spec(config))
    torch.set_num_threads(threads)


def test_bf16_evaluation_matches_float32_within_tolerance(tiny):
    _, model, data = tiny
    exact = score_split(model, data.eval, CPU)
    mixed = score_split(model, data.eval, CPU, precision=Precision(torch.bfloat16))
    assert exact.dtype == mixed.dtype == np.float32
    assert np.abs(mixed - exact).max() <= 0.02 * np.abs(exact).max()
    assert not np.array_equal(mixed, exact)  # bf16 really ran
    full = evaluate(model, data.eval, CPU)
    half = evaluate(model, data.eval, CPU, precision=Precision(torch.bfloat16))
    for direction in ("t2v", "v2t"):
        for key, value in full[direction].items():
            limit = 1.0 if key in ("MedR", "MeanR") else 3.0
            assert abs(half[direction][key] - value) <= limit, (direction, key)


def test_bf16_training_loss_matches_float32_within_tolerance(tiny):
    config, model, data = tiny
    objective = build_objective(objective_spec(config))
    batch = data.train.batch(EpochSampler.for_split(data.train, 16).draw(
        np.arange(16), np.random.default_rng(0)))
    model.train()
    with torch.no_grad():
        exact, _ = objective(model(batch.experts, batch.ind, batch.text), batch)
        with Precision(torch.bfloat16).autocast(CPU):
            mixed, _ = objective(model(batch.experts, batch.ind, batch.text), batch)
    assert mixed.dtype == torch.float32 and torch.isfinite(mixed)
    assert mixed.item() != exact.item()
    assert abs(mixed.item() - exact.item()) <= 0.05 * abs(exact.item())


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CROSSKD_TEST_COMPILE"),
                    reason="torch.compile takes about 2 minutes on a 2-core CPU; set "
                    "CROSSKD_TEST_COMPILE=1 to run")
def test_compiled_step_matches_eager(tiny):
    config, model, data = tiny
    objective = build_objective(objective_spec(config))
    batch = data.train.batch(EpochSampler.for_split(data.train, 16).draw(
        np.arange(16), np.random.default_rng(0)))
    model.train()

    def step(forward):
        model.zero_grad(set_to_none=True)
        loss, _ = objective(forward(batch.experts, batch.ind, batch.text), batch)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    eager_loss, eager_grads = step(model)
    compiled_loss, compiled_grads = step(Runtime(CPU, compile=True).compiled(model))
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-7)
    for mine, theirs in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


def test_trainer_runs_with_bf16_from_the_config(tiny, tmp_path):
    from trainers import trainer_for
    config, _, data = tiny
    config = {**config, "optimizer": {"type": "RAdam", "args": {"lr": 0.01}},
              "trainer": {"epochs": 1, "save_dir": str(tmp_path), "tensorboard": False,
                          "amp": "bf16", "monitor": "max val_t2v_metrics_R5"},
              "data_loader": {**config["data_loader"],
                              "args": {**config["data_loader"]["args"], "batch_size": 16}}}
    result = trainer_for(config, Path(tmp_path) / "run", data=data).train()
    assert result.best_epoch == 1 and np.isfinite(result.history[0]["loss"])
