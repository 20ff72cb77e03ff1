"""Helpers shared by the training tests that train tiny runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_config(config: dict[str, Any], save_dir: Path, batch_size: int = 8,
               optimizer_args: dict[str, float] | None = None, **trainer: Any) -> dict[str, Any]:
    """`config` as a short RAdam run (batch 8, margin 0.1) with the given trainer keys."""
    return {**config,
            "optimizer": {"type": "RAdam", "args": optimizer_args or {"lr": 0.01}},
            "loss": {"type": "MaxMarginRankingLoss", "args": {"margin": 0.1, "fix_norm": True}},
            "trainer": {"save_dir": str(save_dir), "tensorboard": False,
                        "monitor": "max val_t2v_metrics_R5", **trainer},
            "data_loader": {**config["data_loader"],
                            "args": {**config["data_loader"]["args"], "batch_size": batch_size}}}
