"""Every speed and memory option of a run, decided once from the config and the device.

    "trainer": {"amp": "bf16", "compile": false, "cuda_graphs": "auto",
                "optimizer_in_backward": null, "resident_data": "auto",
                "background_checkpoints": null, "cpu_matmul": "auto"}

The settings are read and type-checked in `crosskd.config.runtime.RuntimeSettings` (the
config's runtime part); `resolve_runtime` turns them, with the process context (device,
torchrun job and the precision of `amp`, decided at the command: crosskd.process), optimizer,
training split and model at hand, into one `Runtime`, refusing
combinations that cannot work together with one message that lists every conflict. Model,
loss and data code never see these options: a `Runtime` applies the process-wide ones
(`apply_process_settings`) and swaps its fast paths into a built model (`prepare_model`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from crosskd.config.runtime import RuntimeSettings
from crosskd.errors import ConfigError
from crosskd.optim.ranger import Ranger
from crosskd.train.allocator import reuse_freed_memory
from crosskd.inference.linear_library import resolve_cpu_matmul, use_linear_library
from crosskd.inference.precision import Precision
from crosskd.process import ProcessContext

log = logging.getLogger(__name__)

#: optimizers whose update a CUDA graph can capture (they accept `capturable`, a tensor lr).
CAPTURABLE_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.RAdam)
#: the share of free GPU memory the training split may take with resident_data "auto".
AUTO_MEMORY_SHARE = 0.5
#: torch's own choice at start-up: one thread per physical core.
CORE_THREADS = torch.get_num_threads()
#: below this many parameters a model is too small for threads to pay off.
MIN_PARAMETERS_FOR_THREADS = 4_000_000

@dataclass(frozen=True)
class Runtime:
    """What a run does about speed and memory, decided (see `resolve_runtime`)."""

    device: torch.device
    precision: Precision = Precision()
    compile: bool = False
    cuda_graphs: bool = False
    optimizer_in_backward: bool = False
    resident_data: bool = False
    background_checkpoints: bool = False
    cpu_threads: int | None = None
    #: the library of float32 CPU linear layers: "measured" (per product, measured on this CPU:
    #: crosskd.inference.product_table), "onednn" (crosskd.ops.cpu_matmul) or "torch"
    cpu_matmul: str = field(default_factory=lambda: resolve_cpu_matmul("auto"))

    def compiled(self, model: torch.nn.Module) -> Callable[..., Any]:
        """`model`, compiled when `compile` is on (the weights stay shared with `model`)."""
        if not self.compile:
            return model
        log.info("compiling the training step with torch.compile (first batches are slower)")
        return torch.compile(model)

    def apply_process_settings(self) -> None:
        """Set torch's intra-op thread count, where this runtime decided one, and, on the
        CPU, malloc's reuse of freed memory (crosskd.train.allocator): every process-wide
        setting of a run, here."""
        set_cpu_threads(self.cpu_threads)
        if self.device.type == "cpu":
            reuse_freed_memory()

    def prepare_model(self, model: torch.nn.Module) -> None:
        """Swap this runtime's fast paths into a built model (before or after its weights are
        loaded: parameters and state-dict keys stay): its float32 CPU linear layers run on
        the library decided (crosskd.ops.cpu_matmul)."""
        use_linear_library(model, self.device, self.cpu_matmul)


def set_cpu_threads(count: int | None) -> None:
    """Set torch's intra-op thread count (None: leave it)."""
    if count is not None and count != torch.get_num_threads():
        log.info("using %d CPU thread(s)", count)
        torch.set_num_threads(count)


def cpu_threads_for(model: torch.nn.Module, device: torch.device) -> int | None:
    """One thread for tiny models (threads cost more than they give), else every core; None
    (leave torch's setting) off the CPU or when OMP_NUM_THREADS pins the count."""
    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    size = sum(p.numel() for p in model.parameters())
    return CORE_THREADS if size >= MIN_PARAMETERS_FOR_THREADS else 1


def _graph_conflicts(settings: RuntimeSettings, device: torch.device,
                     optimizer: torch.optim.Optimizer, in_backward: bool) -> list[str]:
    """What CUDA graphs would need and this run lacks."""
    return [need for need, ok in (
        ("a CUDA device", device.type == "cuda"),
        ("an Adam, AdamW or RAdam optimizer (Ranger's lookahead is decided on the host)",
         isinstance(optimizer, CAPTURABLE_OPTIMIZERS) and not isinstance(optimizer, Ranger)),
        ("trainer.optimizer_in_backward off", not in_backward)) if not ok]


def _distributed_conflicts(settings: RuntimeSettings) -> list[str]:
    """The options a torchrun job cannot use: stepping inside backward (before the gradients
    are averaged), CUDA graphs (not captured with the collectives) and torch.compile (not
    tested with the gathers)."""
    return [f"trainer.{key} is true, which does not work under torchrun; set it to false"
            for key, value in (("optimizer_in_backward", settings.optimizer_in_backward),
                               ("cuda_graphs", settings.cuda_graphs),
                               ("compile", settings.compile)) if value is True]


def _resident_fits(device: torch.device, needed_bytes: Callable[[], int]) -> bool:
    """resident_data "auto": on a GPU, when the split takes under half its free memory."""
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return 2 * needed_bytes() < AUTO_MEMORY_SHARE * free


def resolve_runtime(settings: RuntimeSettings, context: ProcessContext,
                    optimizer: torch.optim.Optimizer, model: torch.nn.Module,
                    resident_supported: bool, resident_bytes: Callable[[torch.dtype], int]
                    ) -> Runtime:
    """Decide every option for this process (its device, torchrun job and precision:
    crosskd.process), optimizer, model and training split.

    `resident_supported` says whether the split can be held on the device (one sampled
    caption per video, no teachers); `resident_bytes(token dtype)` what it would take.
    """
    device, distributed, precision = context.device, context.job, context.precision
    matmul = resolve_cpu_matmul(settings.cpu_matmul)
    in_backward = (device.type == "cpu" and distributed is None
                   if settings.optimizer_in_backward is None
                   else settings.optimizer_in_backward)
    conflicts = _distributed_conflicts(settings) if distributed is not None else []
    graph_needs = _graph_conflicts(settings, device, optimizer, in_backward)
    if distributed is not None:
        graph_needs.append("one process")
    elif settings.cuda_graphs is True and graph_needs:
        conflicts.append("trainer.cuda_graphs is true, but CUDA graphs need "
                         + " and ".join(graph_needs))
    if settings.resident_data is True and not resident_supported:
        conflicts.append("trainer.resident_data: true needs one sampled caption per video and "
                         "no TeachText teachers (distil_loss)")
    if conflicts:
        raise ConfigError("; ".join(conflicts))
    resident = resident_supported and (
        settings.resident_data is True or (settings.resident_data == "auto" and _resident_fits(
            device, lambda: resident_bytes(precision.token_dtype))))
    background = (device.type == "cuda" if settings.background_checkpoints is None
                  else settings.background_checkpoints)
    return Runtime(device=device, precision=precision, compile=settings.compile,
                   cuda_graphs=settings.cuda_graphs is not False and not graph_needs,
                   optimizer_in_backward=in_backward, resident_data=resident,
                   background_checkpoints=background,
                   cpu_threads=cpu_threads_for(model, device), cpu_matmul=matmul)
