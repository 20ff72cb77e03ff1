"""optimizer.args and lr_scheduler.args are checked against the class's signature (a typo
names the closest argument) and each rejected value names its key, before any data is read."""

from __future__ import annotations

import pytest

from crosskd.config import ConfigError
from crosskd.optim import OptimizerSpec, check_optimizer, check_scheduler


@pytest.mark.parametrize("kind, args, message", [
    ("RAdam", {"lrr": 0.01},
     "config key optimizer.args.lrr: RAdam takes no argument 'lrr'; did you mean lr?"),
    ("Adam", {"lr": 0.01, "weight_decy": 0.1},
     "config key optimizer.args.weight_decy: Adam takes no argument 'weight_decy'; did you "
     "mean weight_decay?"),
    ("Ranger", {"lr": 0.01, "momentum": 0.9},
     "config key optimizer.args.momentum: Ranger takes no argument 'momentum'; it takes lr, "
     "alpha, k, betas, eps, weight_decay"),
    ("SGD", {"lrr": 0.1, "momentun": 0.9},
     "config keys optimizer.args.lrr, optimizer.args.momentun: SGD takes no arguments 'lrr' "
     "(did you mean lr?), 'momentun' (did you mean momentum?)"),
])
def test_a_misspelled_optimizer_argument_names_the_closest(kind, args, message):
    with pytest.raises(ConfigError) as caught:
        check_optimizer(OptimizerSpec(kind, args))
    assert str(caught.value) == message


@pytest.mark.parametrize("kind, args, key", [
    ("RAdam", {"lr": -0.01, "weight_decay": 1e-5}, "optimizer.args.lr = -0.01"),
    ("Adam", {"lr": 0.01, "betas": [0.9, 1.5]}, "optimizer.args.betas = [0.9, 1.5]"),
    ("RAdam", {"lr": 0.01, "eps": -1.0}, "optimizer.args.eps = -1.0"),
    ("RAdam", {"lr": "fast"}, "optimizer.args.lr = 'fast'"),
    ("SGD", {"lr": 0.1, "nesterov": True}, "optimizer.args.nesterov = True"),
    ("Ranger", {"lr": 0.01, "alpha": 2.0}, "optimizer.args.alpha = 2.0"),
])
def test_a_bad_optimizer_value_names_its_key(kind, args, key):
    with pytest.raises(ConfigError) as caught:
        check_optimizer(OptimizerSpec(kind, args))
    assert str(caught.value).startswith(f"config key {key} is not valid for {kind} (")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind, args, message", [
    ("StepLR", {"step_siz": 1}, "config key lr_scheduler.args.step_siz: StepLR takes no "
                                "argument 'step_siz'; did you mean step_size?"),
    ("StepLR", {"gamma": 0.5}, "config key lr_scheduler.args.step_size is missing: StepLR "
                               "needs it"),
])
def test_scheduler_argument_names_are_checked(kind, args, message):
    with pytest.raises(ConfigError) as caught:
        check_scheduler(OptimizerSpec(kind, args))
    assert str(caught.value) == message


@pytest.mark.parametrize("args, key", [({"step_size": 0}, "lr_scheduler.args.step_size = 0"),
                                       ({"step_size": 1, "gamma": "x"},
                                        "lr_scheduler.args.gamma = 'x'")])
def test_a_bad_scheduler_value_names_its_key(args, key):
    with pytest.raises(ConfigError, match=f"^config key {key} is not valid for StepLR"):
        check_scheduler(OptimizerSpec("StepLR", args))


def test_published_arguments_pass():
    check_optimizer(OptimizerSpec("RAdam", {"lr": 0.01, "weight_decay": 1e-5}))
    check_scheduler(OptimizerSpec("StepLR", {"step_size": 1, "gamma": 0.95}))
