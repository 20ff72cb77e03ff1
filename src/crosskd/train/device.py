"""Pick the torch device from the original `--device` flag (a GPU index, `cpu` or `cuda:N`),
and say which one runs, and why, in one log line."""

from __future__ import annotations

import logging

import torch

from crosskd.errors import UserError

log = logging.getLogger(__name__)

#: the original README's `--device 0`: on a machine without CUDA it still runs, on the CPU.
README_INDEX = "0"


def _gpu_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device)


def _cuda_device(spec: str, index: int) -> torch.device:
    """`cuda:<index>`, refusing an index beyond the visible GPUs."""
    count = torch.cuda.device_count()
    if index >= count:
        raise UserError(f"--device {spec!r}: only {count} GPU(s) visible; use an index below "
                        f"{count}, or --device cpu")
    device = torch.device("cuda", index)
    log.info("running on %s (%s), as --device %s asks", device, _gpu_name(device), spec)
    return device


def _default_device() -> torch.device:
    """No --device: the first GPU when there is one (as the original), else the CPU."""
    if torch.cuda.is_available():
        device = torch.device("cuda", 0)
        log.info("running on %s (%s): the first visible GPU, since no --device was given",
                 device, _gpu_name(device))
        return device
    log.info("running on the CPU: no --device was given and no CUDA GPU is visible")
    return torch.device("cpu")


def resolve_device(spec: str | None) -> torch.device:
    """Turn `--device` into a torch device.

    On a machine without CUDA, an explicit CUDA device is refused, except the bare index 0
    of the original README's commands, which warns and runs on the CPU so that those
    commands still work.
    """
    text = (spec or "").strip().lower()
    if not text:
        return _default_device()
    if text == "cpu":
        log.info("running on the CPU, as --device cpu asks")
        return torch.device("cpu")
    index_text = text.removeprefix("cuda").removeprefix(":") if text.startswith("cuda") else text
    index_text = (index_text or "0").split(",")[0]
    if not (index_text.isascii() and index_text.isdigit()):
        raise UserError(f"--device {spec!r}: expected a GPU index (0), 'cpu' or 'cuda:N'")
    if torch.cuda.is_available():
        return _cuda_device(spec, int(index_text))
    if text == README_INDEX:
        log.warning("no CUDA GPU is visible: --device 0 runs on the CPU")
        return torch.device("cpu")
    raise UserError(f"--device {spec!r}: no CUDA GPU is visible; use --device cpu")
