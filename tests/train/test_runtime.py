"""Runtime options are decided once, per device, and refused together when they conflict."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from crosskd.config import ConfigError
from crosskd.optim.fast_radam import SinglePassRAdam
from crosskd.inference.precision import Precision
from crosskd.config.runtime import RuntimeSettings
from crosskd.process import ProcessContext, TorchrunJob, resolve_precision
from crosskd.inference import linear_library
from crosskd.train import runtime
from crosskd.train.runtime import MIN_PARAMETERS_FOR_THREADS, cpu_threads_for, resolve_runtime

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
TINY = torch.nn.Linear(2, 2)


def _radam() -> SinglePassRAdam:
    return SinglePassRAdam([torch.nn.Parameter(torch.ones(3))], lr=0.01)


def _sgd() -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)


def _resolve(device=CPU, optimizer=None, supported=True, **trainer):
    settings = RuntimeSettings.from_config({"trainer": trainer})
    context = ProcessContext(device, precision=resolve_precision(settings.amp, device))
    return resolve_runtime(settings, context, optimizer or _radam(), TINY, supported,
                           resident_bytes=lambda tokens: 0)


def test_defaults_follow_the_device():
    cpu = _resolve(CPU)
    assert cpu.optimizer_in_backward and not cpu.cuda_graphs and not cpu.resident_data
    assert not cpu.background_checkpoints and cpu.precision == Precision()
    cuda = _resolve(CUDA, resident_data=False)  # "auto" would ask the GPU for its memory
    assert cuda.cuda_graphs and not cuda.optimizer_in_backward and cuda.background_checkpoints
    assert not _resolve(CUDA, optimizer=_sgd(), resident_data=False).cuda_graphs
    assert not _resolve(CUDA, cuda_graphs=False, resident_data=False).cuda_graphs
    assert not _resolve(CUDA, optimizer_in_backward=True, resident_data=False).cuda_graphs


def test_explicit_settings_win_over_device_defaults():
    runtime = _resolve(CPU, optimizer_in_backward=False, resident_data=True,
                       background_checkpoints=True, amp="bf16", compile=True)
    assert not runtime.optimizer_in_backward and runtime.resident_data
    assert runtime.background_checkpoints and runtime.compile
    assert runtime.precision.dtype is torch.bfloat16
    assert runtime.precision.token_dtype is torch.bfloat16
    assert _resolve(CPU, amp="fp32").precision.dtype is None


def test_conflicts_are_refused_in_one_message():
    with pytest.raises(ConfigError, match="need a CUDA device and an Adam, AdamW or RAdam"):
        _resolve(CPU, optimizer=_sgd(), cuda_graphs=True)
    with pytest.raises(ConfigError, match="optimizer_in_backward off"):
        _resolve(CUDA, cuda_graphs=True, optimizer_in_backward=True, resident_data=False)
    with pytest.raises(ConfigError) as caught:
        _resolve(CPU, supported=False, cuda_graphs=True, resident_data=True)
    assert "trainer.cuda_graphs" in str(caught.value) and "trainer.resident_data" in str(
        caught.value)


@pytest.mark.parametrize("key, value", [
    ("amp", "fp16"), ("amp", ["bf16"]), ("compile", "yes"), ("compile", 1),
    ("cuda_graphs", "yes"), ("cuda_graphs", 1), ("optimizer_in_backward", "yes"),
    ("optimizer_in_backward", 0), ("resident_data", "sometimes"),
    ("background_checkpoints", "soon")])
def test_malformed_settings_name_their_key(key, value):
    with pytest.raises(ConfigError, match=f"trainer.{key}"):
        RuntimeSettings.from_config({"trainer": {key: value}})


def test_threads_fit_the_model(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_threads_for(TINY, CPU) == 1
    big = torch.nn.Linear(MIN_PARAMETERS_FOR_THREADS, 1, bias=False)
    assert cpu_threads_for(big, CPU) >= 1 and cpu_threads_for(big, CUDA) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads_for(TINY, CPU) is None


def test_torchrun_refuses_the_options_that_step_or_capture_around_the_all_reduce():
    job = TorchrunJob(rank=0, world_size=2, local_rank=0)
    settings = RuntimeSettings.from_config({"trainer": {
        "optimizer_in_backward": True, "cuda_graphs": True, "compile": True}})
    with pytest.raises(ConfigError, match="optimizer_in_backward is true.*torchrun.*"
                       "cuda_graphs is true.*compile is true"):
        resolve_runtime(settings, ProcessContext(CPU, job), _radam(), TINY, True,
                        lambda tokens: 0)
    runtime = resolve_runtime(RuntimeSettings(), ProcessContext(CUDA, job), _radam(), TINY,
                              False, lambda tokens: 0)
    assert not runtime.optimizer_in_backward and not runtime.cuda_graphs


def test_the_runtime_takes_the_contexts_device_and_precision():
    bf16 = Precision.from_amp("bf16")
    runtime = resolve_runtime(RuntimeSettings(), ProcessContext(CPU, precision=bf16), _radam(),
                              TINY, True, lambda tokens: 0)
    assert runtime.device == CPU and runtime.precision == bf16


def test_cpu_matmul_is_decided_once_and_applied(monkeypatch):
    """"auto" is measured per product where torch has oneDNN (whatever the machine's name),
    torch's products where it has not; a named one is used as asked and swapped into the
    model it is applied to; oneDNN where torch lacks it, or an unknown name, is refused
    naming the key."""
    from crosskd.inference.product_table import MeasuredPlan
    from crosskd.ops import PlannedLinear
    from crosskd.ops.cpu_matmul import ONEDNN

    monkeypatch.setattr(linear_library, "onednn_available", lambda: True)
    assert _resolve().cpu_matmul == "measured"
    monkeypatch.setattr(linear_library, "onednn_available", lambda: False)
    assert _resolve().cpu_matmul == "torch"
    monkeypatch.undo()
    for library, plan in (("torch", None), ("onednn", ONEDNN), ("auto", MeasuredPlan)):
        model = torch.nn.Sequential(torch.nn.Linear(2, 2))
        _resolve(cpu_matmul=library).prepare_model(model)
        assert isinstance(model[0], PlannedLinear) is (plan is not None)
        if plan is not None:
            assert model[0].plan is plan or isinstance(model[0].plan, plan)
        assert list(model.state_dict()) == ["0.weight", "0.bias"]
    on_gpu = torch.nn.Sequential(torch.nn.Linear(2, 2))
    dataclasses.replace(_resolve(cpu_matmul="onednn"), device=CUDA).prepare_model(on_gpu)
    assert type(on_gpu[0]) is torch.nn.Linear
    with pytest.raises(ConfigError, match='trainer.cpu_matmul: expected "auto" or "onednn" '
                                          'or "torch", got \'mkl\''):
        _resolve(cpu_matmul="mkl")
    monkeypatch.setattr(linear_library, "onednn_available", lambda: False)
    with pytest.raises(ConfigError, match='trainer.cpu_matmul is "onednn", but this torch'):
        _resolve(cpu_matmul="onednn")
