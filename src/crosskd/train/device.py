"""Pick the torch device from the original `--device` flag (a GPU index, `cpu` or `cuda:N`)."""

from __future__ import annotations

import logging

import torch

from crosskd.errors import UserError

log = logging.getLogger(__name__)


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
