"""Pick the torch device from the original `--device` flag (a GPU index, `cpu` or `cuda:N`),
and the number of CPU threads for the model at hand."""

from __future__ import annotations

import logging
import os

import torch

from crosskd.errors import UserError

log = logging.getLogger(__name__)

#: torch's own choice at start-up: one thread per physical core.
CORE_THREADS = torch.get_num_threads()
#: below this many parameters a model is too small for threads to pay off.
MIN_PARAMETERS_FOR_THREADS = 4_000_000


def resolve_device(spec: str | None) -> torch.device:
    """Turn `--device` into a torch device.

    Without CUDA only GPU 0 (the README's value and the original's default) falls back to the
    CPU, so that published commands still run; any other index is refused, since the user
    asked for a GPU that does not exist.
    """
    text = (spec or "").strip().lower()
    if text in ("", "cpu"):
        return torch.device("cpu")
    index_text = text.removeprefix("cuda").lstrip(":") or "0"
    index_text = index_text.split(",")[0]
    if not index_text.isdigit():
        raise UserError(f"--device {spec!r}: expected a GPU index (0), 'cpu' or 'cuda:N'")
    index = int(index_text)
    if not torch.cuda.is_available():
        if index != 0:
            raise UserError(f"--device {spec!r}: no CUDA GPU is visible; use --device cpu")
        log.info("no CUDA GPU available: running on the CPU instead of --device %s", spec)
        return torch.device("cpu")
    if index >= torch.cuda.device_count():
        raise UserError(f"--device {spec!r}: only {torch.cuda.device_count()} GPU(s) visible")
    return torch.device("cuda", index)


def cpu_threads_for(model: torch.nn.Module) -> int:
    """One thread for tiny models (threads cost more than they give), else every core."""
    size = sum(p.numel() for p in model.parameters())
    return CORE_THREADS if size >= MIN_PARAMETERS_FOR_THREADS else 1


def configure_cpu_threads(model: torch.nn.Module, device: torch.device) -> None:
    """Set torch's intra-op threads for `model` on the CPU, unless OMP_NUM_THREADS pins them."""
    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return
    threads = cpu_threads_for(model)
    if threads != torch.get_num_threads():
        log.info("using %d CPU thread(s) for a model of %d parameters", threads,
                 sum(p.numel() for p in model.parameters()))
        torch.set_num_threads(threads)
