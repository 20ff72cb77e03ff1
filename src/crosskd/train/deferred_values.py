"""Each training step's loss values, read on the host one step later.

A graphed training step is one replay call, queued in microseconds. Reading its loss at once
makes the host wait for the whole step, and only then cut the next batch, while the GPU
idles. Here the values are copied to pinned host memory behind the step on the GPU's
stream, and read after the next step has been queued, so the GPU always has the next step
waiting. Values on the CPU are copied (so later in-place writes to the step's outputs do not
change them) and returned just as late, so the caller's logic is one for every device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class _InFlight:
    """One step's values on their way to the host."""

    tag: int
    names: list[str]
    values: torch.Tensor
    copied: torch.cuda.Event | None


class DeferredValues:
    """Hands back each pushed step's values at the following push (or flush)."""

    def __init__(self) -> None:
        self._in_flight: _InFlight | None = None

    def push(self, tag: int, values: dict[str, torch.Tensor]) -> tuple[int, dict[str, float]] | None:
        """Start copying `values` (scalars, all on one device) to the host; return the
        previous push's tag and values, or None on the first push."""
        stacked = torch.stack([value.detach().float() for value in values.values()])
        copied = None
        if stacked.is_cuda:
            stacked = stacked.to("cpu", non_blocking=True)  # into pinned memory
            copied = torch.cuda.Event()
            copied.record()
        previous, self._in_flight = self._in_flight, _InFlight(tag, list(values), stacked, copied)
        return _read(previous)

    def flush(self) -> tuple[int, dict[str, float]] | None:
        """The last pushed step's tag and values (waiting for them), or None if none is left."""
        previous, self._in_flight = self._in_flight, None
        return _read(previous)


def _read(step: _InFlight | None) -> tuple[int, dict[str, float]] | None:
    if step is None:
        return None
    if step.copied is not None:
        step.copied.synchronize()
    return step.tag, dict(zip(step.names, step.values.tolist()))
