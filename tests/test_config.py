"""Config loading: inherit_from resolution, overrides, eval settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crosskd.config import (ConfigError, apply_overrides, load_config, parse_custom_args,
                            parse_set_args, require, with_eval_settings)


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_child_wins_and_parent_resolves_relative_to_child(tmp_path, monkeypatch):
    write(tmp_path / "cfg" / "parent.json", {"a": {"x": 1, "y": 2}, "b": 1})
    child = write(tmp_path / "cfg" / "child.json", {"inherit_from": "parent.json", "a": {"y": 3}})
    monkeypatch.chdir(tmp_path)
    assert load_config(child) == {"a": {"x": 1, "y": 3}, "b": 1}


def test_parent_falls_back_to_working_directory(tmp_path, monkeypatch):
    write(tmp_path / "configs" / "base.json", {"b": 5})
    child = write(tmp_path / "elsewhere" / "child.json", {"inherit_from": "configs/base.json"})
    monkeypatch.chdir(tmp_path)
    assert load_config(child) == {"b": 5}


def test_missing_parent_warns_and_keeps_child(tmp_path, caplog):
    child = write(tmp_path / "child.json", {"inherit_from": "nowhere.json", "k": 1})
    assert load_config(child) == {"k": 1}
    assert "nowhere.json" in caplog.text


def test_cycle_is_reported(tmp_path):
    write(tmp_path / "a.json", {"inherit_from": "b.json"})
    write(tmp_path / "b.json", {"inherit_from": "a.json"})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.json")


def test_bad_json_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        load_config(bad)


def test_overrides_both_syntaxes():
    config = {"trainer": {"epochs": 100}, "optimizer": {"args": {"lr": 0.001}}}
    pairs = parse_custom_args("trainer.epochs@3+optimizer.args.lr@0.01") + parse_set_args(
        ["data_loader.args.split_name=full-test"])
    updated = apply_overrides(config, pairs)
    assert updated["trainer"]["epochs"] == 3
    assert updated["optimizer"]["args"]["lr"] == 0.01
    assert updated["data_loader"]["args"]["split_name"] == "full-test"
    assert config["trainer"]["epochs"] == 100


def test_malformed_override_is_rejected():
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_set_args(["epochs"])


def test_eval_settings_merge_over_config():
    config = {"data_loader": {"args": {"split_name": "full-val", "batch_size": 64}},
              "eval_settings": {"data_loader": {"args": {"split_name": "full-test"}}}}
    merged = with_eval_settings(config)
    assert merged["data_loader"]["args"] == {"split_name": "full-test", "batch_size": 64}


def test_require_names_missing_and_mistyped_keys():
    config = {"data_loader": {"args": {"batch_size": "64"}}}
    with pytest.raises(ConfigError, match="data_loader.args.batch_size must be int"):
        require(config, "data_loader.args.batch_size", int)
    with pytest.raises(ConfigError, match="trainer.epochs is missing"):
        require(config, "trainer.epochs", int)
    assert require(config, "trainer.epochs", int, default=3) == 3
    with pytest.raises(ConfigError, match="must be int"):
        require({"n": True}, "n", int)


def test_non_string_inherit_from_is_refused(tmp_path):
    child = write(tmp_path / "child.json", {"inherit_from": {"a": 1}})
    with pytest.raises(ConfigError, match="inherit_from must be a file name"):
        load_config(child)


def test_non_utf8_config_is_refused(tmp_path):
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


def test_folder_as_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path)
