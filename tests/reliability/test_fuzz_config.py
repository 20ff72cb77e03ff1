"""Fuzz the config loader and the config consumers: a result or a UserError, nothing else.

Three layers users reach with a hand-edited config: reading the JSON file (with its
`inherit_from` chain), applying command-line overrides (`--custom_args`, `--set`), and the
builders that validate a config before any data is read (monitor, model, objective,
optimiser, scheduler). Any other exception type escaping is a traceback instead of one
actionable line, i.e. a bug.
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from crosskd.config import (ConfigError, apply_overrides, load_config, parse_custom_args,
                            parse_experiment, parse_set_args)
from crosskd.data.synth import SynthSpec, example_config
from crosskd.errors import UserError
from crosskd.losses import build_objective
from crosskd.models import build_model
from crosskd.optim import build_optimizer, build_scheduler

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                phases=(Phase.explicit, Phase.generate),  # no shrinking: bounded CI time
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 40),
                         st.floats(allow_nan=False, allow_infinity=False, width=32),
                         st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=12)


def _expect_result_or_user_error(action) -> Any:
    """Run `action`; a UserError must carry a message, any other exception fails the test."""
    try:
        return action()
    except UserError as err:
        assert str(err).strip(), "a UserError must carry a message"
        return None


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


config_texts = st.one_of(
    json_values.map(json.dumps),
    st.dictionaries(st.sampled_from(["inherit_from", "trainer", "arch", "seed"]),
                    st.one_of(json_values, st.sampled_from(["parent.json", "child.json",
                                                            "missing.json", ".", ""])),
                    max_size=3).map(json.dumps),
    st.text(max_size=40),
)


@FUZZ
@given(child=config_texts, parent=config_texts, raw=st.binary(max_size=24))
def test_load_config_gives_a_config_or_a_user_error(folder, child, parent, raw):
    (folder / "parent.json").write_text(parent, encoding="utf-8")
    (folder / "child.json").write_text(child, encoding="utf-8")
    (folder / "raw.json").write_bytes(raw)
    for name in ("child.json", "raw.json"):
        config = _expect_result_or_user_error(lambda: load_config(folder / name))
        assert config is None or isinstance(config, dict)


@FUZZ
@given(custom=st.text(max_size=30), assignments=st.lists(st.text(max_size=12), max_size=3),
       base=st.dictionaries(st.text(max_size=4), json_values, max_size=3))
def test_command_line_overrides_give_a_config_or_a_user_error(custom, assignments, base):
    overrides = _expect_result_or_user_error(
        lambda: parse_custom_args(custom) + parse_set_args(assignments))
    if overrides is not None:
        updated = _expect_result_or_user_error(lambda: apply_overrides(base, overrides))
        assert updated is None or isinstance(updated, dict)


def _valid_config() -> dict[str, Any]:
    """A complete small CE+ config with caption distillation (what the fuzz mutates)."""
    spec = SynthSpec(videos=10, visual_dims={name: 8 for name in SynthSpec().visual_dims})
    config = example_config(spec, "unused")
    config.update({
        "optimizer": {"type": "RAdam", "args": {"lr": 0.001, "weight_decay": 1e-5}},
        "lr_scheduler": {"type": "StepLR", "args": {"step_size": 1, "gamma": 0.95}},
        "loss": {"type": "MaxMarginRankingLoss", "args": {"margin": 0.1, "fix_norm": True}},
        "trainer": {"epochs": 1, "monitor": "max val_t2v_metrics_geometric_mean_R1-R5-R10"},
        "data_loader": {**config["data_loader"],
                        "args": {**config["data_loader"]["args"], "batch_size": 4}},
        "ranking_loss": True,
        "ranking_params": {"cap_w": 1.0, "cap_t": 5.0, "vid_w": 0.0, "vid_t": 5.0},
    })
    return config


VALID = _valid_config()


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a nested config (the places a mutation can hit)."""
    if not isinstance(node, dict):
        return []
    found = []
    for key, value in node.items():
        found.append((*prefix, key))
        found.extend(_paths(value, (*prefix, key)))
    return found


PATHS = _paths(VALID)


def _build_everything(config: dict[str, Any]) -> None:
    """What the trainer validates before reading data: the parse, then every builder."""
    experiment = parse_experiment(config)
    model = build_model(experiment.model)
    build_objective(experiment.objective)
    optimizer = build_optimizer(experiment.trainer.optimizer, model.parameters())
    build_scheduler(experiment.trainer.lr_scheduler, optimizer)


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    """The valid config with 1-3 keys deleted or given a value of another JSON type."""
    config = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = config
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values)
    return config


def test_the_unmutated_config_builds():
    _build_everything(copy.deepcopy(VALID))


@FUZZ
@given(mutated_configs())
def test_a_damaged_config_is_built_or_refused_with_a_user_error(config):
    torch.manual_seed(0)
    _expect_result_or_user_error(lambda: _build_everything(config))


RETYPED = [
    (("arch",), ["CENet"], "arch"),
    (("arch", "args", "ghost_clusters"), [1], "arch.args.ghost_clusters"),
    (("arch", "args", "vlad_clusters", "text"), [9], "arch.args.vlad_clusters.text"),
    (("arch", "args", "vlad_clusters", "audio"), [9], "arch.args.vlad_clusters.audio"),
    (("arch", "args", "num_g_layers"), {"n": 3}, "arch.args.num_g_layers"),
    (("experts", "ce_shared_dim"), None, "experts.ce_shared_dim"),
    (("experts", "ce_shared_dim"), 7.5, "experts.ce_shared_dim"),
    (("experts", "text_feat"), ["w2v"], "experts.text_feat"),
    (("experts", "modalities"), [], "experts.modalities"),
    (("trainer", "monitor"), {"max": "R1"}, "trainer.monitor"),
    (("data_loader", "args", "feat_aggregation", "scene.densenet161.0", "feat_dims"), None,
     'data_loader.args.feat_aggregation."scene.densenet161.0".feat_dims'),
    (("data_loader", "args", "feat_aggregation", "scene.densenet161.0", "temporal"), 3,
     'data_loader.args.feat_aggregation."scene.densenet161.0".temporal'),
]


@pytest.mark.parametrize(("path", "value", "named"), RETYPED,
                         ids=[".".join(path) for path, _, _ in RETYPED])
def test_a_retyped_key_is_refused_by_name(path, value, named):
    """Retypings that once escaped as TypeError/AttributeError: a ConfigError naming the key."""
    config = copy.deepcopy(VALID)
    parent = config
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    with pytest.raises(ConfigError, match=re.escape(named)):
        _build_everything(config)
