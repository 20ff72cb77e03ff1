"""The trainer part of a config: epochs, validation, saving, selection, batch size,
optimizer and scheduler (the runtime options are the runtime part: crosskd.train.runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from crosskd.config.values import require
from crosskd.errors import ConfigError
from crosskd.config.monitor import DEFAULT_MONITOR, Monitor
from crosskd.optim import OptimizerSpec, check_optimizer, check_scheduler

DEFAULT_SAVE_DIR = "data/saved"


@dataclass(frozen=True)
class TrainerSpec:
    """How long to train, when to validate and save, how to select, what to step with."""

    batch_size: int
    optimizer: OptimizerSpec
    lr_scheduler: OptimizerSpec | None = None
    epochs: int = 1
    val_freq: int = 1
    save_period: int = 1
    save_dir: str = DEFAULT_SAVE_DIR
    tensorboard: bool = True
    monitor: Monitor = Monitor.parse()


def _block(config: Mapping[str, Any], block: str) -> OptimizerSpec:
    require(config, block, dict)
    return OptimizerSpec(require(config, f"{block}.type", str),
                         dict(require(config, f"{block}.args", dict, default={})))


def optimizer_spec(config: Mapping[str, Any]) -> OptimizerSpec:
    """The checked `optimizer` block."""
    spec = _block(config, "optimizer")
    check_optimizer(spec)
    return spec


def scheduler_spec(config: Mapping[str, Any]) -> OptimizerSpec | None:
    """The checked `lr_scheduler` block, or None when there is none."""
    if not config.get("lr_scheduler"):
        return None
    spec = _block(config, "lr_scheduler")
    check_scheduler(spec)
    return spec


def trainer_spec(config: Mapping[str, Any]) -> TrainerSpec:
    """The typed trainer part of a (resolved) config."""
    require(config, "trainer", (dict, type(None)), default=None)
    batch_size = require(config, "data_loader.args.batch_size", int)
    if batch_size < 1:
        raise ConfigError("config key data_loader.args.batch_size must be an integer > 0, "
                          f"got {batch_size}")
    epochs = require(config, "trainer.epochs", int, default=1)
    if epochs < 1:
        raise ConfigError(f"config key trainer.epochs must be an integer >= 1, got {epochs}")
    return TrainerSpec(
        batch_size=batch_size,
        optimizer=optimizer_spec(config),
        lr_scheduler=scheduler_spec(config),
        epochs=epochs,
        val_freq=max(1, require(config, "trainer.val_freq", int, default=1)),
        save_period=max(1, require(config, "trainer.save_period", int, default=1)),
        save_dir=require(config, "trainer.save_dir", str, default=DEFAULT_SAVE_DIR),
        tensorboard=bool(require(config, "trainer.tensorboard", (bool, int), default=True)),
        monitor=Monitor.parse(require(config, "trainer.monitor", str, default=DEFAULT_MONITOR)),
    )
