"""The trainer part of a config: epochs, validation, saving, selection, batch size,
optimizer and scheduler (the runtime options are the runtime part: crosskd.config.runtime).

Each field of `TrainerSpec` declares the key it is read from (crosskd.config.keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from crosskd.config.keys import setting
from crosskd.config.monitor import Monitor
from crosskd.config.reading import read_field, read_part, read_section
from crosskd.config.values import truthy
from crosskd.errors import ConfigError
from crosskd.optim import OptimizerSpec, check_optimizer, check_scheduler

DEFAULT_SAVE_DIR = "data/saved"


def _batch_size(value: int, key: str) -> int:
    if value < 1:
        raise ConfigError(f"config key {key} must be an integer > 0, got {value}")
    return value


def _epochs(value: int, key: str) -> int:
    if value < 1:
        raise ConfigError(f"config key {key} must be an integer >= 1, got {value}")
    return value


def _every(value: int, key: str) -> int:
    """A period in epochs: below 1 means every epoch, as in the original."""
    return max(1, value)


def _optimizer(block: Mapping[str, Any], key: str) -> OptimizerSpec:
    spec = read_section(OptimizerSpec, block, key)
    check_optimizer(spec)
    return spec


def _scheduler(block: Mapping[str, Any], key: str) -> OptimizerSpec | None:
    """The checked scheduler block; an empty one means none."""
    if not block:
        return None
    spec = read_section(OptimizerSpec, block, key)
    check_scheduler(spec)
    return spec


@dataclass(frozen=True)
class TrainerSpec:
    """How long to train, when to validate and save, how to select, what to step with."""

    batch_size: int = setting(key="data_loader.args.batch_size", convert=_batch_size)
    optimizer: OptimizerSpec = setting(convert=_optimizer)
    lr_scheduler: OptimizerSpec | None = setting(None, convert=_scheduler)
    epochs: int = setting(1, key="trainer.epochs", convert=_epochs)
    val_freq: int = setting(1, key="trainer.val_freq", convert=_every)
    save_period: int = setting(1, key="trainer.save_period", convert=_every)
    save_dir: str = setting(DEFAULT_SAVE_DIR, key="trainer.save_dir")
    tensorboard: bool = setting(True, key="trainer.tensorboard", json=bool | int,
                                convert=truthy)
    monitor: Monitor = setting(Monitor.parse(), key="trainer.monitor", json=str,
                               convert=Monitor.parse)
    #: decides an exact tie of `monitor` (`trainer.monitor_tie_break`); "off": the later epoch
    tie_break: Monitor = setting(Monitor.parse("off"), key="trainer.monitor_tie_break",
                                 json=str, convert=Monitor.parse)


def optimizer_spec(config: Mapping[str, Any]) -> OptimizerSpec:
    """The checked `optimizer` block."""
    return read_field(TrainerSpec, "optimizer", config)


def scheduler_spec(config: Mapping[str, Any]) -> OptimizerSpec | None:
    """The checked `lr_scheduler` block, or None when there is none."""
    return read_field(TrainerSpec, "lr_scheduler", config)


def trainer_spec(config: Mapping[str, Any]) -> TrainerSpec:
    """The typed trainer part of a (resolved) config."""
    return read_part(TrainerSpec, config)
