"""The process context is decided once: the torchrun job from its variables (read as ASCII
numbers in range), each rank's GPU, which process writes files, and the precision."""

from __future__ import annotations

import pytest
import torch

from crosskd import process
from crosskd.errors import UserError
from crosskd.inference.precision import Precision
from crosskd.process import ProcessContext, TorchrunJob, detect, torchrun_job

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
JOB = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}


def test_torchrun_variables_make_a_job_of_more_than_one_process():
    assert torchrun_job({}) is None
    assert torchrun_job({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) is None
    assert torchrun_job(JOB) == TorchrunJob(3, 4, 1)
    assert torchrun_job({"RANK": "1", "WORLD_SIZE": "2"}) == TorchrunJob(1, 2, None)
    restarted = torchrun_job({**JOB, "TORCHELASTIC_RUN_ID": "abc",
                              "TORCHELASTIC_RESTART_COUNT": "2"})
    assert (restarted.run_id, restarted.restarts) == ("abc", 2)


@pytest.mark.parametrize(("changed", "named"), [
    ({"RANK": "²"}, "RANK"), ({"WORLD_SIZE": "x"}, "WORLD_SIZE"), ({"RANK": "4"}, "RANK"),
    ({"LOCAL_RANK": "-1"}, "LOCAL_RANK"), ({"LOCAL_RANK": "١"}, "LOCAL_RANK"),
    ({"TORCHELASTIC_RESTART_COUNT": "1e3"}, "TORCHELASTIC_RESTART_COUNT")])
def test_malformed_torchrun_variables_are_one_line_naming_the_variable(changed, named):
    with pytest.raises(UserError) as caught:
        torchrun_job({**JOB, **changed})
    message = str(caught.value)
    assert message.startswith(f"environment variable {named}: ") and "\n" not in message
    assert "set by torchrun" in message


def test_each_rank_takes_its_gpu_and_rank_zero_alone_writes():
    ranked = detect(CUDA, environ=JOB)
    assert ranked.device == torch.device("cuda", 1) and ranked.job == TorchrunJob(3, 4, 1)
    assert not ranked.writes_files and ranked.shard == (3, 4) and ranked.processes == 4
    assert detect(CPU, environ=JOB).device == CPU
    assert detect(CUDA, environ={"RANK": "1", "WORLD_SIZE": "2"}).device == CUDA
    first = detect(CPU, environ={**JOB, "RANK": "0"})
    assert first.writes_files and first.shard == (0, 4)
    alone = detect(CPU, environ={})
    assert alone == ProcessContext() and alone.writes_files and alone.shard == (0, 1)


def test_the_precision_is_the_configs_amp_on_the_device(monkeypatch):
    monkeypatch.setattr(process, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert detect(CPU, "bf16", environ={}).precision == Precision(torch.bfloat16)
    assert detect(CPU, "fp32", environ={}).precision == Precision()
    assert detect(CPU, environ={}).precision == Precision()


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert process.cpu_flags(str(info)) == {"fpu", "avx512f", "avx512_bf16"}
    info.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")  # Arm
    assert "bf16" in process.cpu_flags(str(info))
    assert process.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize("flags, warned", [({"avx512f"}, True), ({"avx512_bf16"}, False),
                                           ({"amx_bf16"}, False)])
def test_bf16_on_a_cpu_without_bf16_matmuls_is_warned_about(flags, warned, monkeypatch,
                                                             caplog):
    monkeypatch.setattr(process, "cpu_flags", lambda: frozenset(flags))
    with caplog.at_level("WARNING", logger="crosskd.process"):
        assert process.resolve_precision("bf16", CPU).dtype is torch.bfloat16
    assert ("no bfloat16 matmul instructions" in caplog.text) is warned
    caplog.clear()
    with caplog.at_level("WARNING", logger="crosskd.process"):
        assert process.resolve_precision(None, CPU) == Precision()
        process.resolve_precision("bf16", CUDA)
    assert caplog.text == ""


@pytest.mark.parametrize("flags, amp, suggested", [
    ({"amx_bf16", "avx512_bf16"}, None, True), ({"amx_bf16"}, "fp32", False),
    ({"amx_bf16"}, "bf16", False), ({"avx512_bf16"}, None, False), (set(), None, False)])
def test_bf16_is_suggested_on_a_cpu_with_matrix_units_never_chosen(flags, amp, suggested,
                                                                   monkeypatch, caplog):
    """Only where amp is unset; the precision stays what the config says."""
    monkeypatch.setattr(process, "cpu_flags", lambda: frozenset(flags))
    with caplog.at_level("INFO", logger="crosskd.process"):
        precision = process.resolve_precision(amp, CPU)
    assert precision == Precision.from_amp(amp)
    assert ("bfloat16 matrix units" in caplog.text) is suggested
