"""Optional speed-ups a config can switch on: bfloat16 autocast and torch.compile.

    "trainer": {"amp": "bf16", "compile": true}

Both are off by default (exact float32, eager), and both leave the metrics within the
tolerances stated in tests/train/test_acceleration.py.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Mapping

import torch

from crosskd.config import ConfigError

log = logging.getLogger(__name__)

AMP_CHOICES = {"bf16": torch.bfloat16, "fp32": None, "off": None}


@dataclass(frozen=True)
class Acceleration:
    """Mixed precision (`amp`: "bf16" or None) and graph compilation of the training step."""

    amp: str | None = None
    compile: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Acceleration:
        """Read `trainer.amp` ("bf16", "fp32"/"off"/null) and `trainer.compile` (bool)."""
        trainer = config.get("trainer") or {}
        amp = trainer.get("amp")
        if amp is not None and amp not in AMP_CHOICES:
            raise ConfigError(f"config key trainer.amp: {amp!r} is not one of "
                              f"{sorted(AMP_CHOICES)} (or null)")
        compiled = trainer.get("compile", False)
        if not isinstance(compiled, bool):
            raise ConfigError(f"config key trainer.compile: expected true or false, got "
                              f"{compiled!r}")
        return cls(amp if AMP_CHOICES.get(amp) is not None else None, compiled)

    def autocast(self, device: torch.device, cache: bool = True) -> ContextManager:
        """The autocast context of `amp` on `device` (a no-op context without `amp`);
        `cache=False` casts the weights anew on every use (what a CUDA graph needs)."""
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=AMP_CHOICES[self.amp], cache_enabled=cache)

    def inference(self) -> ContextManager:
        """The no-gradient context of evaluation: inference mode, or no_grad under `amp`,
        where autocast caches each weight's bfloat16 copy only outside inference mode."""
        return torch.no_grad() if self.amp is not None else torch.inference_mode()

    def compiled(self, model: torch.nn.Module) -> Callable[..., Any]:
        """`model`, compiled when `compile` is on (the weights stay shared with `model`)."""
        if not self.compile:
            return model
        log.info("compiling the training step with torch.compile (first batches are slower)")
        return torch.compile(model)
