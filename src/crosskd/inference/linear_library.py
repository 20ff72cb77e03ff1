"""Which library runs a model's float32 CPU linear layers (`trainer.cpu_matmul`), decided
here and applied to a built model: training's runtime, evaluation and index building all
ask here, so the choice is made in one place and model code never sees it."""

from __future__ import annotations

import logging

import torch

from crosskd.errors import ConfigError
from crosskd.inference.product_table import measured_plan, table_path
from crosskd.ops.cpu_matmul import ONEDNN, onednn_available, use_product_plan

log = logging.getLogger(__name__)


def resolve_cpu_matmul(setting: str) -> str:
    """The CPU linear-layer library of `trainer.cpu_matmul`: "auto" is "measured" (each
    product on the library measured faster for its shape on this CPU,
    crosskd.inference.product_table) where torch has oneDNN, torch's own matmul elsewhere;
    "onednn" and "torch" put every product on that library."""
    if setting == "auto":
        return "measured" if onednn_available() else "torch"
    if setting == "onednn" and not onednn_available():
        raise ConfigError('trainer.cpu_matmul is "onednn", but this torch build has no oneDNN '
                          'linear kernel; set it to "auto" or "torch"')
    return setting


def use_linear_library(model: torch.nn.Module, device: torch.device, library: str) -> None:
    """Swap `library`'s linear layers into a built model on the CPU (before or after its
    weights are loaded: parameters and state-dict keys stay); other devices keep torch's."""
    if device.type != "cpu":
        return
    if library == "torch":
        log.info("float32 linear layers run on torch's products (trainer.cpu_matmul)")
        return
    if library == "measured":
        use_product_plan(model, measured_plan())
        log.info("float32 linear layers: each product on the library measured faster for its "
                 "shape on this CPU (trainer.cpu_matmul \"auto\"; table %s)", table_path())
    else:
        use_product_plan(model, ONEDNN)
        log.info("float32 linear layers run on oneDNN (trainer.cpu_matmul)")
