"""Model selection by the config's `trainer.monitor` ("max
val_t2v_metrics_geometric_mean_R1-R5-R10"), an exact tie decided by `trainer.monitor_tie_break`
where a config sets one (generated configs: "min val_t2v_metrics_MeanR"); published configs
set none and keep the original's rule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from crosskd.errors import ConfigError

DEFAULT_MONITOR = "max val_t2v_metrics_geometric_mean_R1-R5-R10"


@dataclass(frozen=True)
class Monitor:
    """Which logged metric selects the best epoch and whether larger is better."""

    mode: str
    key: str

    @classmethod
    def parse(cls, text: str = DEFAULT_MONITOR, name: str = "trainer.monitor") -> "Monitor":
        """Parse a `trainer.monitor` value (or another key's, `name`); `off` keeps the last
        epoch as the best one."""
        if text == "off":
            return cls("off", "")
        mode, _, key = text.partition(" ")
        if mode not in ("min", "max") or not key:
            raise ConfigError(f"{name} {text!r} must look like 'max <metric>' or "
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


def tie_keeps_best(tie_break: Monitor, row: Mapping[str, Any],
                   best_row: Mapping[str, Any]) -> bool:
    """On an exact tie of the monitored metric, whether `tie_break` strictly prefers the best
    epoch's log row to this epoch's `row`; otherwise the later epoch wins, as in the original."""
    if tie_break.mode == "off":
        return False
    return not tie_break.improved(float(row[tie_break.key]), float(best_row[tie_break.key]))
