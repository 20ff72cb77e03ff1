"""Runtime options are decided once, per device, and refused together when they conflict."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from crosskd.config import ConfigError
from crosskd.optim.fast_radam import SinglePassRAdam
from crosskd.train.distributed import Distributed
from crosskd.train.precision import Precision
from crosskd.config.runtime import RuntimeSettings
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
    return resolve_runtime(settings, device, optimizer or _radam(), TINY, supported,
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
    job = Distributed(rank=0, world_size=2, local_rank=0)
    settings = RuntimeSettings.from_config({"trainer": {
        "optimizer_in_backward": True, "cuda_graphs": True, "compile": True}})
    with pytest.raises(ConfigError, match="optimizer_in_backward is true.*torchrun.*"
                       "cuda_graphs is true.*compile is true"):
        resolve_runtime(settings, CPU, _radam(), TINY, True, lambda tokens: 0, distributed=job)
    runtime = resolve_runtime(RuntimeSettings(), CUDA, _radam(), TINY, False, lambda tokens: 0,
                              distributed=job)
    assert not runtime.optimizer_in_backward and not runtime.cuda_graphs
    assert runtime.writes_files and not dataclasses.replace(
        runtime, distributed=Distributed(1, 2, 1)).writes_files


def test_torchrun_variables_make_a_job_and_the_global_batch_must_split():
    assert Distributed.from_environment({}) is None
    assert Distributed.from_environment({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) is None
    job = Distributed.from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert job == Distributed(3, 4, 1) and job.device(CUDA) == torch.device("cuda", 1)
    job.check_batch_size(64)
    with pytest.raises(ConfigError, match="batch_size: 66 .*4 processes"):
        job.check_batch_size(66)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert runtime.cpu_flags(str(info)) == {"fpu", "avx512f", "avx512_bf16"}
    info.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")  # Arm
    assert "bf16" in runtime.cpu_flags(str(info))
    assert runtime.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize("flags, warned", [({"avx512f"}, True), ({"avx512_bf16"}, False),
                                           ({"amx_bf16"}, False)])
def test_bf16_on_a_cpu_without_bf16_matmuls_is_warned_about(flags, warned, monkeypatch,
                                                             caplog):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
    with caplog.at_level("WARNING", logger="crosskd.train.runtime"):
        assert _resolve(CPU, amp="bf16").precision.dtype is torch.bfloat16
    assert ("no bfloat16 matmul instructions" in caplog.text) is warned
    caplog.clear()
    with caplog.at_level("WARNING", logger="crosskd.train.runtime"):
        assert runtime.resolve_precision(None, CPU) == Precision()
        runtime.resolve_precision("bf16", CUDA)
    assert caplog.text == ""


def test_cpu_matmul_is_decided_once_and_applied(monkeypatch):
    """"auto" is the machine's default library; a named one is used as asked; oneDNN where
    torch lacks it, or an unknown name, is refused naming the key."""
    from crosskd.ops import cpu_matmul

    assert _resolve().cpu_matmul == cpu_matmul.default_backend()
    chosen = _resolve(cpu_matmul="torch")
    assert chosen.cpu_matmul == "torch"
    chosen.apply_process_settings()
    assert cpu_matmul.backend() == "torch"
    with pytest.raises(ConfigError, match='trainer.cpu_matmul: expected "auto" or "onednn" '
                                          'or "torch", got \'mkl\''):
        _resolve(cpu_matmul="mkl")
    monkeypatch.setattr(cpu_matmul, "onednn_available", lambda: False)
    with pytest.raises(ConfigError, match='trainer.cpu_matmul is "onednn", but this torch'):
        _resolve(cpu_matmul="onednn")
    assert _resolve().cpu_matmul == "torch"
