"""Optimizers and learning-rate schedulers by the original configs' names, and the faster
RAdam they map to; the config layer checks a config's choices here before any data is read."""

from crosskd.optim.builders import (OptimizerSpec, build_optimizer, build_scheduler,
                                    check_optimizer, check_scheduler)

__all__ = ["OptimizerSpec", "build_optimizer", "build_scheduler", "check_optimizer",
           "check_scheduler"]
