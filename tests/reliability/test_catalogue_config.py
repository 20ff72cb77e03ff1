"""Bad-input catalogue, config rows (docs/BAD_INPUTS.md C1-C10): configs and overrides.

Every row must stop before a run folder is created (nothing to mistake for a result) with
one line that names the file or key and the fix, and exit status 2.
"""

from __future__ import annotations

import json

import pytest

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
