"""Every key of every known config is known; an unknown key, path or type is refused early."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosskd.checkpoint.original import load_original_checkpoint
from crosskd.config import (ConfigError, apply_overrides, check_config, check_path,
                            format_path, load_config, parse_experiment, parse_set_args)
from crosskd.config.known import known_patterns
from crosskd.config.schema import IGNORED, KNOWN
from crosskd.data.layouts import LAYOUTS
from crosskd.data.synth import SynthSpec, example_config
from crosskd.shipped import config_dir

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
OURS = sorted(config_dir().rglob("*.json"))  # the configs shipped with the package
REFERENCE = sorted((SHARED / "reference-configs").rglob("*.json"))
GOLDEN = sorted((SHARED / "conformance" / "configs").glob("*.json"))
CHECKPOINTS = sorted((SHARED / "conformance" / "checkpoints").glob("*trained_model*.pth"))


def _skip_missing(paths):
    return paths or [pytest.param(None, marks=pytest.mark.skip(reason="shared data absent"))]


@pytest.mark.parametrize("path", [*OURS, *_skip_missing(REFERENCE), *_skip_missing(GOLDEN)],
                         ids=lambda p: str(p).split("/")[-1] if p else "absent")
def test_every_published_reference_and_golden_config_is_known(path):
    check_config(load_config(path), str(path))


@pytest.mark.parametrize("path", _skip_missing(CHECKPOINTS), ids=lambda p: p.name if p else "")
def test_the_config_inside_a_golden_checkpoint_is_known(path):
    check_config(load_original_checkpoint(path).config, str(path))


@pytest.mark.parametrize("dataset", sorted(LAYOUTS))
def test_the_synthetic_example_config_is_known(dataset):
    check_config(example_config(SynthSpec(dataset=dataset), "/data"))


@pytest.mark.parametrize(("override", "suggestion"), [
    ("trainer.epoch=3", "trainer.epochs"),
    ("trainr.epochs=3", "trainer.epochs"),
    ("data_loader.args.batchsize=8", "data_loader.args.batch_size"),
    ('data_loader.args.feat_aggregation."audio".temporl=vlad',
     "data_loader.args.feat_aggregation.audio.temporal"),
])
def test_an_unknown_override_path_names_the_closest_key(override, suggestion):
    with pytest.raises(ConfigError, match=f"--set: unknown config key .*did you mean "
                                          f"{suggestion.replace('.', '[.]')}[?]"):
        apply_overrides({}, parse_set_args([override]), "--set")


def test_a_misspelled_key_in_a_file_is_refused_naming_the_file(tmp_path):
    config = load_config(REPO / "configs" / "demo" / "msrvtt-demo-ce.json")
    config["trainer"]["epoch"] = 3
    with pytest.raises(ConfigError, match="demo.json: unknown config key trainer.epoch; "
                                          "did you mean trainer.epochs"):
        check_config(config, "config demo.json")


@pytest.mark.parametrize(("key", "value", "message"), [
    (("trainer", "epochs"), "abc", "trainer.epochs must be int, not str"),
    (("data_loader", "args", "batch_size"), "64", "data_loader.args.batch_size must be int"),
    (("data_loader", "args", "feat_aggregation", "imagenet.senet154.0", "temporal"), 3,
     'feat_aggregation."imagenet.senet154.0".temporal must be str'),
    (("arch", "args", "vlad_clusters", "audio"), "16", "vlad_clusters.audio must be int or null"),
])
def test_a_mistyped_value_is_refused_naming_the_key(key, value, message):
    config = load_config(REPO / "configs" / "msrvtt-train-gpt2-xl-finetuned-mte-adam-ce.json")
    node = config
    for part in key[:-1]:
        node = node[part]
    node[key[-1]] = value
    with pytest.raises(ConfigError, match=message.replace(".", "[.]")):
        check_config(config)


def test_named_sections_check_their_entries_keys():
    config = {"data_loader": {"args": {"feat_aggregation": {"audio": {"temporl": "vlad"}}}}}
    with pytest.raises(ConfigError, match="did you mean data_loader.args.feat_aggregation"
                                          "[.]audio[.]temporal"):
        check_config(config)


def _known(path: tuple[str, ...]) -> bool:
    """The oracle: a path is known when a row of the schema tables matches it or lies
    below it, or it lies below an open or ignored row (eval_settings repeats the top level)."""
    if path[:1] == ("eval_settings",) and len(path) > 1:
        path = path[1:]
        if path[:1] == ("eval_settings",):
            return False
    for parts, free in [*((known, shape.open) for known, shape in KNOWN.items()),
                        *((tuple(pattern.split(".")), True) for pattern in IGNORED)]:
        length = min(len(parts), len(path))
        if len(path) > len(parts) and not free:
            continue
        if all(p in ("*", q) for p, q in zip(parts[:length], path[:length])):
            return True
    return False


PATTERNS = sorted({format_path(p) for p in known_patterns()})
edits = st.sampled_from(["drop", "double", "swap", "insert"])


@given(st.sampled_from(PATTERNS), edits, st.integers(0, 40), st.sampled_from("aes_.x"))
def test_a_mutated_path_is_accepted_exactly_when_it_is_known(pattern, edit, where, char):
    text = pattern.replace("*", "audio")
    i = where % len(text)
    mutated = {"drop": text[:i] + text[i + 1:], "double": text[:i] + text[i] + text[i:],
               "swap": text[:i] + text[i + 1:i + 2] + text[i:i + 1] + text[i + 2:],
               "insert": text[:i] + char + text[i:]}[edit]
    try:
        path = tuple(mutated.split("."))
        if "" in path:
            raise AssertionError("empty segment")
    except AssertionError:
        with pytest.raises(ConfigError):
            check_path(mutated, "--set")
        return
    if _known(path):
        assert check_path(mutated, "--set") == path
    else:
        with pytest.raises(ConfigError, match="unknown config key"):
            check_path(mutated, "--set")


def test_train_refuses_a_misspelled_override_before_reading_any_data():
    """The demo config's data_dir does not exist here: any data access would fail first."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "train.py", "--config", "configs/demo/msrvtt-demo-ce.json",
         "--device", "cpu", "--set", "trainer.epoch=3", "--no_cache"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "trainer.epochs" in lines[0], result.stderr
    assert time.monotonic() - started < 60


def test_eval_settings_may_hold_any_top_level_key_and_checks_it():
    check_config({"eval_settings": {"data_loader": {"args": {"split_name": "full-test"}},
                                    "tester": {"save_dir": "x"}, "disable_gpu": True}})
    with pytest.raises(ConfigError, match="eval_settings[.]data_loader[.]args[.]split_nam; "
                                          "did you mean eval_settings[.]data_loader[.]args"
                                          "[.]split_name"):
        check_config({"eval_settings": {"data_loader": {"args": {"split_nam": "full-test"}}}})


def test_the_parsed_experiment_keeps_the_original_format_dict_to_save():
    config = load_config(REPO / "configs" / "msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json")
    experiment = parse_experiment(config)
    assert experiment.raw == config and experiment.raw is not config
    assert experiment.evaluation().data.split_name == "full-test"
    assert experiment.with_seed(7).raw == {**config, "seed": 7}
