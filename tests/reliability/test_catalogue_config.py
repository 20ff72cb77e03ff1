"""Bad-input catalogue, config rows (docs/BAD_INPUTS.md C1-C21): configs and overrides;
Y rows: configs and flags of `crosskd synth`.

Every row must stop before a run folder is created (nothing to mistake for a result) with
one line that names the file or key and the fix, and exit status 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crosskd.config import apply_overrides, load_config
from crosskd.shipped import resolve_config
from reliability_support import assert_one_line_error


def _train(cli, workspace, *extra):
    return cli("train", "--config", workspace.config_path, *extra)


def _assert_no_run(workspace):
    assert workspace.run_dirs() == [], "a failed config must not leave a run folder behind"


def test_c1_config_that_is_not_json(cli, workspace):
    workspace.config_path.write_text('{"seed": 0,, }', encoding="utf-8")
    assert_one_line_error(_train(cli, workspace), str(workspace.config_path), "not valid JSON")
    _assert_no_run(workspace)


def test_c2_config_missing_experts_modalities(cli, workspace):
    config = workspace.config
    del config["experts"]["modalities"]
    workspace.write_config(config)
    assert_one_line_error(_train(cli, workspace), "experts.modalities", "missing")
    _assert_no_run(workspace)


def test_c2b_config_missing_the_batch_size(cli, workspace):
    config = workspace.config
    del config["data_loader"]["args"]["batch_size"]
    workspace.write_config(config)
    assert_one_line_error(_train(cli, workspace), "data_loader.args.batch_size")
    _assert_no_run(workspace)


def test_c3_unknown_expert_name(cli, workspace):
    config = workspace.config
    config["experts"]["modalities"] = [*config["experts"]["modalities"], "imagenet.senet999.0"]
    workspace.write_config(config)
    assert_one_line_error(_train(cli, workspace), "imagenet.senet999.0", "feat_aggregation")
    _assert_no_run(workspace)


def test_c4_unknown_optimiser(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--set", "optimizer.type=Adamax"),
                          "optimizer.type", "'Adamax'", "RAdam")
    _assert_no_run(workspace)


@pytest.mark.parametrize("cap_t", ["0", "-1"])
def test_c5_cap_t_not_positive(cli, workspace, cap_t):
    assert_one_line_error(_train(cli, workspace, "--custom_args", f"ranking_params.cap_t@{cap_t}"),
                          "ranking_params.cap_t", "> 0")
    _assert_no_run(workspace)


def test_c6_config_file_not_found(cli, workspace):
    missing = workspace.config_path.with_name("typo.json")
    assert_one_line_error(cli("train", "--config", missing), "config file not found",
                          str(missing))
    _assert_no_run(workspace)


def test_c7_inherit_from_cycle(cli, workspace):
    first = workspace.config_path.with_name("a.json")
    second = workspace.config_path.with_name("b.json")
    first.write_text(json.dumps({"inherit_from": "b.json"}), encoding="utf-8")
    second.write_text(json.dumps({"inherit_from": "a.json"}), encoding="utf-8")
    assert_one_line_error(cli("train", "--config", first), "inherit_from cycle", "a.json",
                          "b.json")
    _assert_no_run(workspace)


def test_c8_unknown_text_feature_model(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--set", "experts.text_feat=gpt5"),
                          "experts.text_feat", "'gpt5'", "gpt2-xl-finetune")
    _assert_no_run(workspace)


def test_c9_malformed_monitor(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--set", "trainer.monitor=biggest R1"),
                          "trainer.monitor", "max <metric>")
    _assert_no_run(workspace)


def test_c10_malformed_custom_args(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--custom_args", "trainer.epochs=3"),
                          "override", "key.path@value")
    _assert_no_run(workspace)


def test_c11_cuda_graphs_where_they_cannot_run(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--set", "trainer.cuda_graphs=true"),
                          "trainer.cuda_graphs", "a CUDA device")
    _assert_no_run(workspace)


def test_c11b_cuda_graphs_with_ranger(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--set", "optimizer.type=Ranger",
                                 "--set", "trainer.cuda_graphs=true"),
                          "trainer.cuda_graphs", "Ranger's lookahead")
    _assert_no_run(workspace)


def test_c17_text_features_the_split_does_not_have(cli, workspace):
    assert_one_line_error(_train(cli, workspace,
                                 "--set", "data_loader.args.dataset_name=ActivityNet",
                                 "--set", "data_loader.args.split_name=val",
                                 "--set", "experts.text_feat=openai"),
                          "experts.text_feat", "exist for split(s) val1 only, not 'val'")
    _assert_no_run(workspace)


def test_c12_malformed_background_checkpoints(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--set", "trainer.background_checkpoints=soon"),
                          "trainer.background_checkpoints")
    _assert_no_run(workspace)


def test_c13_zero_epochs_leaves_no_run_folder(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--set", "trainer.epochs=0"),
                          "trainer.epochs", ">= 1", "got 0")
    _assert_no_run(workspace)
    assert not list(workspace.save_dir.rglob("config.json"))


@pytest.mark.parametrize("flag, override", [("--set", "trainer.epoch=3"),
                                            ("--custom_args", "trainer.epoch@3")])
def test_c14_unknown_override_path(cli, workspace, flag, override):
    assert_one_line_error(_train(cli, workspace, flag, override),
                          flag, "unknown config key trainer.epoch", "did you mean trainer.epochs")
    _assert_no_run(workspace)


def test_c15_misspelled_key_in_the_config_file(cli, workspace):
    config = workspace.config
    config["trainer"]["epoch"] = 3
    workspace.write_config(config)
    assert_one_line_error(_train(cli, workspace), str(workspace.config_path),
                          "unknown config key trainer.epoch", "did you mean trainer.epochs")
    _assert_no_run(workspace)


def test_c16_mistyped_override_value(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--set", "trainer.epochs=abc"),
                          "trainer.epochs must be int, not str ('abc')")
    _assert_no_run(workspace)


@pytest.mark.parametrize("key, value", [("data_loader.args.num_test_captions", 0),
                                        ("data_loader.args.max_tokens.text", 0),
                                        ("data_loader.args.max_tokens.audio", -3)])
def test_c14_counts_that_must_be_positive(cli, workspace, key, value):
    assert_one_line_error(_train(cli, workspace, "--set", f"{key}={value}"), key,
                          "integer > 0", f"got {value}")
    _assert_no_run(workspace)


@pytest.mark.parametrize("key", ["experts.ce_shared_dim",
                                 'data_loader.args.feat_aggregation."imagenet.senet154.0"'
                                 '.feat_dims.embed',
                                 "data_loader.args.num_test_captions"])
def test_c14b_absurd_widths_and_counts(cli, workspace, key):
    """A config from elsewhere with a width of 10**9 is refused before a model is built (it
    was a huge allocation when the model was made)."""
    assert_one_line_error(_train(cli, workspace, "--set", f"{key}=1000000000"),
                          "1000000000 is out of range; use an integer from 1 to 65536")
    _assert_no_run(workspace)


def test_c18_several_misspelled_keys_are_named_in_one_error(cli, workspace):
    config = workspace.config
    config["trainer"]["epoch"] = 3
    config["trainer"]["savedir"] = "x"
    config["sed"] = 1
    workspace.write_config(config)
    assert_one_line_error(_train(cli, workspace), str(workspace.config_path),
                          "3 unknown config keys", "trainer.epoch (did you mean trainer.epochs?)",
                          "trainer.savedir (did you mean trainer.save_dir?)",
                          "sed (did you mean seed?)")
    _assert_no_run(workspace)


def test_c18b_several_unknown_override_paths_are_named_in_one_error(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--custom_args",
                                 "trainer.epoch@3+optimizer.typ@SGD"),
                          "--custom_args: 2 unknown config keys",
                          "trainer.epoch (did you mean trainer.epochs?)",
                          "optimizer.typ (did you mean optimizer.type?)")
    _assert_no_run(workspace)


def test_c18c_unknown_paths_of_both_override_flags_are_named_in_one_error(cli, workspace):
    line = assert_one_line_error(_train(cli, workspace, "--custom_args", "trainer.epoch@3",
                                        "--set", "optimizer.typ=\"SGD\""),
                                 "--custom_args: unknown config key trainer.epoch",
                                 "--set: unknown config key optimizer.typ")
    assert "did you mean optimizer.type?" in line
    _assert_no_run(workspace)


def test_c19_misspelled_optimizer_argument_names_the_closest(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--custom_args", "optimizer.args.lrr@0.01"),
                          "config key optimizer.args.lrr: RAdam takes no argument 'lrr'; "
                          "did you mean lr?")
    _assert_no_run(workspace)


@pytest.mark.parametrize("override, key", [("optimizer.args.lr=-0.01", "optimizer.args.lr"),
                                           ("optimizer.args.betas=[0.9,1.5]",
                                            "optimizer.args.betas"),
                                           ("lr_scheduler.args.step_size=0",
                                            "lr_scheduler.args.step_size")])
def test_c20_optimizer_value_out_of_range_names_its_key(cli, workspace, override, key):
    assert_one_line_error(_train(cli, workspace, "--set", override), f"config key {key} = ",
                          "is not valid for")
    _assert_no_run(workspace)


@pytest.mark.parametrize("override, key", [
    ('distil_params.teachers=["../../../../outside.pkl"]', "distil_params.teachers"),
    ('data_loader.args.root_feat_folder="/etc"', "data_loader.args.root_feat_folder")])
def test_c21_a_file_name_that_climbs_out_of_data_dir(cli, workspace, override, key):
    assert_one_line_error(_train(cli, workspace, "--set", "distil_loss=true", "--set", override),
                          f"config key {key} = ", "must name a path inside")
    _assert_no_run(workspace)


# `crosskd synth --like CONFIG`: the config may come from anywhere.

LIKE = "configs/msrvtt-train-gpt2-xl-finetuned-mte-adam-ttcap.json"


def _downloaded(tmp_path, **changes) -> Path:
    """A shipped config with `changes` (key path -> JSON text), as a file someone sent."""
    config = apply_overrides(load_config(resolve_config(LIKE)), changes.items())
    path = tmp_path / "downloaded.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _outside_is_untouched(tmp_path):
    assert not list(tmp_path.rglob("victim*")), "synth wrote outside --out"


@pytest.mark.parametrize("key, value", [
    ("distil_params.teachers", '["../../../../victim.pkl"]'),
    ("distil_params.teachers", '["{tmp}/victim.pkl"]'),
    ('data_loader.args.feat_aggregation."imagenet.senet154.0".fps', '"/../../../victim"')])
def test_y1_synth_like_config_naming_files_outside_out(cli, tmp_path, key, value):
    config = _downloaded(tmp_path, **{key: value.replace("{tmp}", str(tmp_path))})
    assert_one_line_error(cli("synth", "--like", config, "--out", tmp_path / "a" / "b" / "out"),
                          "config key ", "'..'")
    _outside_is_untouched(tmp_path)


def test_y2_synth_like_into_an_out_with_a_symlink_leading_outside(cli, tmp_path):
    out = tmp_path / "out"
    (out / "high-quality" / "structured-symlinks").mkdir(parents=True)
    (tmp_path / "victim").mkdir()
    (out / "high-quality" / "structured-symlinks" / "teachers").symlink_to(tmp_path / "victim")
    assert_one_line_error(cli("synth", "--like", LIKE, "--out", out, "--videos", "12"),
                          "config key distil_params.teachers", "points outside", str(out))
    assert list((tmp_path / "victim").iterdir()) == []
    assert not list(out.rglob("*.pickle")), "refused before the first file is written"


@pytest.mark.parametrize("key, value, also", [
    ('data_loader.args.feat_aggregation."imagenet.senet154.0".feat_dims.embed', "1000000000",
     {}),
    ("experts.ce_shared_dim", "1000000000", {}),
    ("experts.ce_shared_dim", "-5", {"arch.args.use_ce": '""'})])  # MoEE: no model check
def test_y3_synth_like_absurd_width_in_the_config(cli, tmp_path, key, value, also):
    result = cli("synth", "--like", _downloaded(tmp_path, **{key: value}, **also),
                 "--out", tmp_path / "out")
    assert_one_line_error(result, f"config key {key}", "out of range", "1 to 65536")
    assert not list((tmp_path / "out").rglob("*.pickle"))


@pytest.mark.parametrize("flags, fragments", [
    (["--videos", "٤٠"], ["argument --videos", "'٤٠' is not a whole number", "ASCII digits"]),
    (["--captions", "-3"], ["argument --captions", "-3 is out of range", "1 to 1000"]),
    (["--expert-dim", "0"], ["argument --expert-dim", "0 is out of range"]),
])
def test_y4_synth_count_flags_not_ascii_or_out_of_range(cli, tmp_path, flags, fragments):
    assert_one_line_error(cli("synth", "--out", tmp_path / "out", *flags), *fragments)
    assert not (tmp_path / "out").exists()


def test_y5_synth_dataset_too_large_to_write(cli, tmp_path):
    result = cli("synth", "--out", tmp_path / "out", "--videos", "1000000",
                 "--captions", "1000", "--caption-tokens", "4", "100")
    assert_one_line_error(result, "synthetic dataset: about", "GiB to write, over the 64 GiB "
                          "limit", "the largest part is text features")
    assert not (tmp_path / "out").exists()
