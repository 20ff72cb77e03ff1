"""Which library runs a model's float32 CPU linear layers (`trainer.cpu_matmul`), decided
here and applied to a built model: training's runtime, evaluation and index building all
ask here, so the choice is made in one place and model code never sees it."""

from __future__ import annotations

import logging
import platform

import torch

from crosskd.errors import ConfigError
from crosskd.ops.cpu_matmul import onednn_available, use_onednn

log = logging.getLogger(__name__)

#: machines where oneDNN's fp32 kernels are used by default (trainer.cpu_matmul "auto").
ONEDNN_MACHINES = ("x86_64", "amd64")


def resolve_cpu_matmul(setting: str) -> str:
    """The CPU linear-layer library of `trainer.cpu_matmul`: "auto" is oneDNN on x86 CPUs
    where torch has it (crosskd.ops.cpu_matmul), torch's own matmul elsewhere (e.g. Arm,
    where torch's oneDNN runs through other libraries)."""
    if setting == "auto":
        machine = platform.machine().lower()
        return "onednn" if onednn_available() and machine in ONEDNN_MACHINES else "torch"
    if setting == "onednn" and not onednn_available():
        raise ConfigError('trainer.cpu_matmul is "onednn", but this torch build has no oneDNN '
                          'linear kernel; set it to "auto" or "torch"')
    return setting


def use_linear_library(model: torch.nn.Module, device: torch.device, library: str) -> None:
    """Swap `library`'s linear layers into a built model on the CPU (before or after its
    weights are loaded: parameters and state-dict keys stay); other devices keep torch's."""
    if device.type != "cpu":
        return
    if library == "onednn":
        use_onednn(model)
    log.info("float32 linear layers run on %s (trainer.cpu_matmul)",
             "oneDNN" if library == "onednn" else "torch's matmul")
