"""Mixed precision: the autocast and no-gradient contexts of training and inference.

    "trainer": {"amp": "bf16"}

Off by default (exact float32); bf16 leaves the metrics within the tolerances stated in
tests/train/test_acceleration.py.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ContextManager

import torch

#: `trainer.amp` values and the autocast dtype each stands for (None: float32).
AMP_CHOICES: dict[str | None, torch.dtype | None] = {
    "bf16": torch.bfloat16, "fp32": None, "off": None, None: None}


@dataclass(frozen=True)
class Precision:
    """The autocast dtype (None for plain float32) and the contexts that apply it."""

    dtype: torch.dtype | None = None

    @classmethod
    def from_amp(cls, amp: str | None) -> Precision:
        """The precision of a `trainer.amp` value ("bf16", "fp32", "off" or None)."""
        return cls(AMP_CHOICES[amp])

    def autocast(self, device: torch.device, cache: bool = True) -> ContextManager:
        """The autocast context on `device` (a no-op context in float32); `cache=False`
        casts the weights anew on every use (what a CUDA graph needs)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.dtype, cache_enabled=cache)

    def inference(self) -> ContextManager:
        """The no-gradient context of evaluation: inference mode, or no_grad under autocast,
        where autocast caches each weight's low-precision copy only outside inference mode."""
        return torch.no_grad() if self.dtype is not None else torch.inference_mode()

    @property
    def token_dtype(self) -> torch.dtype:
        """The dtype caption tokens resident on a device are held in: the autocast dtype
        (the model only multiplies them, which autocast does in that dtype anyway)."""
        return self.dtype or torch.float32
