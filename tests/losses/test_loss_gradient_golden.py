"""The gradient of the cecap total, through the real model, equals the original's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crosskd.checkpoint import load_original_checkpoint
from crosskd.config import load_config, model_spec, objective_spec
from crosskd.losses import build_objective

REL = 1e-4
# Biases feeding batch norm have zero gradient in exact arithmetic; both implementations
# report float noise there (1e-10 .. 1e-7), which only has to stay noise.
NOISE_FLOOR = 1e-6


def test_cecap_total_gradient_norms_match(conformance, losses_golden):
    models = pytest.importorskip("crosskd.models")
    config = load_config(conformance / "configs" / "msrvtt-mini-cecap.json")
    model = models.build_model(model_spec(config))
    model.load_state_dict(load_original_checkpoint(
        conformance / "checkpoints" / "msrvtt-mini-cecap_seed0_trained_model.pth").state_dict)
    model.train()
    arrays = np.load(conformance / "forward_golden.npz")
    group = lambda prefix: {name.split("/", 1)[1]: torch.from_numpy(arrays[name])  # noqa: E731
                            for name in arrays.files if name.startswith(prefix)}

    output = model(group("train_in_experts/"), group("train_in_ind/"),
                   torch.from_numpy(arrays["train_in_text"]))
    total, _ = build_objective(objective_spec(config))(output)
    total.backward()

    expected = losses_golden["cecap_total_grad_l2_norm_per_param"]
    grads = {name: param.grad for name, param in model.named_parameters()}
    assert set(expected) == set(grads)
    for name, norm in expected.items():
        ours = 0.0 if grads[name] is None else grads[name].norm().item()
        if norm < NOISE_FLOOR:
            assert ours < NOISE_FLOOR, name
        else:
            assert ours == pytest.approx(norm, rel=REL), name
