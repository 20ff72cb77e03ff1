"""Pick the torch device from the original `--device` flag (a GPU index, `cpu` or `cuda:N`)."""

from __future__ import annotations

import logging

import torch

from crosskd.errors import UserError

log = logging.getLogger(__name__)


def resolve_device(spec: str | None) -> torch.device:
    """Turn `--device` into a torch device; without a usable GPU, fall back to the CPU."""
    text = (spec or "").strip().lower()
    if text in ("", "cpu"):
        return torch.device("cpu")
    index_text = text.removeprefix("cuda").lstrip(":") or "0"
    index_text = index_text.split(",")[0]
    if not index_text.isdigit():
        raise UserError(f"--device {spec!r}: expected a GPU index (0), 'cpu' or 'cuda:N'")
    if not torch.cuda.is_available():
        log.info("no CUDA GPU available: running on the CPU instead of --device %s", spec)
        return torch.device("cpu")
    index = int(index_text)
    if index >= torch.cuda.device_count():
        raise UserError(f"--device {spec!r}: only {torch.cuda.device_count()} GPU(s) visible")
    return torch.device("cuda", index)
