"""Model selection by the config's `trainer.monitor` ("max val_t2v_metrics_geometric_mean_R1-R5-R10")."""

from __future__ import annotations

import math
from dataclasses import dataclass

from crosskd.errors import ConfigError

DEFAULT_MONITOR = "max val_t2v_metrics_geometric_mean_R1-R5-R10"


@dataclass(frozen=True)
class Monitor:
    """Which logged metric selects the best epoch and whether larger is better."""

    mode: str
    key: str

    @classmethod
    def parse(cls, text: str = DEFAULT_MONITOR) -> "Monitor":
        """Parse a `trainer.monitor` value; `off` keeps the last epoch as the best one."""
        if text == "off":
            return cls("off", "")
        mode, _, key = text.partition(" ")
        if mode not in ("min", "max") or not key:
            raise ConfigError(f"trainer.monitor {text!r} must look like 'max <metric>' or "
                              "'min <metric>' (or 'off')")
        return cls(mode, key)

    @property
    def worst(self) -> float:
        """The starting value that every first measurement improves on."""
        return math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float, best: float) -> bool:
        """True when `value` is at least as good as `best` (ties: the later epoch wins)."""
        if self.mode == "off":
            return True
        return value <= best if self.mode == "min" else value >= best
