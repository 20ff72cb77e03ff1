"""Ranger (RAdam with Lookahead, the CE base configs' optimizer): the original's update, the
same weights when stepped inside backward, checkpoints that resume it exactly, and refused
where CUDA graphs are asked for."""

from __future__ import annotations

import io
import math

import pytest
import torch

from crosskd.config import ConfigError
from crosskd.config.runtime import RuntimeSettings
from crosskd.optim import OptimizerSpec, build_optimizer, check_optimizer
from crosskd.optim.ranger import Ranger
from crosskd.process import ProcessContext
from crosskd.train.backward_step import step_during_backward
from crosskd.train.runtime import resolve_runtime
from nested_equality import same_nested

#: the args of the CE base configs' Ranger (configs/base_config.json of the original).
BASE_ARGS = {"lr": 0.01, "weight_decay": 5e-05}


def _original_ranger(weights: torch.Tensor, grads: list[torch.Tensor], lr: float, wd: float,
                     alpha: float = 0.5, k: int = 6, betas=(0.95, 0.999), eps=1e-5):
    """The original's Ranger update, written out from its equations (float64)."""
    p, slow = weights.clone(), weights.clone()
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    beta1, beta2 = betas
    rho_max = 2 / (1 - beta2) - 1
    for t, g in enumerate(grads, start=1):
        v = beta2 * v + (1 - beta2) * g * g
        m = beta1 * m + (1 - beta1) * g
        rho = rho_max - 2 * t * beta2 ** t / (1 - beta2 ** t)
        p = p - wd * lr * p
        if rho > 5:
            rect = math.sqrt((1 - beta2 ** t) * (rho - 4) / (rho_max - 4) * (rho - 2) / rho
                             * rho_max / (rho_max - 2)) / (1 - beta1 ** t)
            p = p - rect * lr * m / (v.sqrt() + eps)
        else:
            p = p - lr / (1 - beta1 ** t) * m
        if t % k == 0:
            slow = slow + alpha * (p - slow)
            p = slow.clone()
    return p


def test_ranger_follows_the_original_update_through_rectification_and_lookahead():
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(50, dtype=torch.float64, generator=generator)
    grads = [torch.randn(50, dtype=torch.float64, generator=generator) for _ in range(20)]
    param = torch.nn.Parameter(start.clone())
    optimizer = Ranger([param], **BASE_ARGS)
    for grad in grads:
        param.grad = grad.clone()
        optimizer.step()
    expected = _original_ranger(start, grads, BASE_ARGS["lr"], BASE_ARGS["weight_decay"])
    torch.testing.assert_close(param.detach(), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(optimizer.state[param]["slow_buffer"], _original_ranger(
        start, grads[:18], BASE_ARGS["lr"], BASE_ARGS["weight_decay"]), rtol=1e-12, atol=1e-12)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))


def _train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: range,
           in_backward: bool = False) -> None:
    for step in steps:
        inputs = torch.randn(8, 6, generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad(set_to_none=True)
        model(inputs).square().mean().backward()
        if not in_backward:
            optimizer.step()


def test_stepping_inside_backward_gives_the_same_weights_and_state():
    runs = []
    for in_backward in (False, True):
        model = _model()
        optimizer = Ranger(model.parameters(), k=3, **BASE_ARGS)
        if in_backward:
            step_during_backward(optimizer)
        _train(model, optimizer, range(10), in_backward)
        runs.append((model, optimizer))
    assert same_nested(runs[0][0].state_dict(), runs[1][0].state_dict())
    assert same_nested(runs[0][1].state_dict(), runs[1][1].state_dict())


def test_a_checkpointed_ranger_resumes_bit_exactly():
    model = _model()
    optimizer = Ranger(model.parameters(), k=4, **BASE_ARGS)
    _train(model, optimizer, range(5))
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    _train(model, optimizer, range(5, 11))
    buffer.seek(0)
    stored = torch.load(buffer, weights_only=True)
    resumed = _model()
    resumed.load_state_dict(stored["model"])
    again = Ranger(resumed.parameters(), **BASE_ARGS)  # k comes back from the checkpoint
    again.load_state_dict(stored["optimizer"])
    _train(resumed, again, range(5, 11))
    assert again.param_groups[0]["k"] == 4
    assert same_nested(model.state_dict(), resumed.state_dict())
    assert same_nested(optimizer.state_dict(), again.state_dict())


def test_the_configs_name_ranger_and_bad_arguments_are_refused():
    check_optimizer(OptimizerSpec("Ranger", BASE_ARGS))
    assert isinstance(build_optimizer(OptimizerSpec("Ranger", BASE_ARGS), _model().parameters()),
                      Ranger)
    with pytest.raises(ConfigError, match="alpha"):
        check_optimizer(OptimizerSpec("Ranger", {"lr": 0.01, "alpha": 2.0}))
    with pytest.raises(ConfigError, match="optimizer.args"):
        check_optimizer(OptimizerSpec("Ranger", {"lr": 0.01, "momentum": 0.9}))


def test_cuda_graphs_refuse_ranger_and_auto_runs_it_eagerly():
    optimizer = Ranger(_model().parameters(), **BASE_ARGS)

    def resolve(**trainer):
        return resolve_runtime(RuntimeSettings.from_config({"trainer": trainer}),
                               ProcessContext(torch.device("cuda")), optimizer, _model(), False,
                               resident_bytes=lambda tokens: 0)

    with pytest.raises(ConfigError, match="Ranger"):
        resolve(cuda_graphs=True)
    assert not resolve().cuda_graphs
