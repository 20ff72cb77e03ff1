"""`crosskd inspect` lists a config's model and a checkpoint's contents without data."""

from __future__ import annotations

import json

from crosskd.cli import main

MSRVTT = "msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json"


def run_json(capsys, *args):
    assert main(["inspect", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_manifest_equals_the_original_for_a_full_size_config(conformance, capsys):
    config = conformance.parent / "reference-configs" / "configs_crosskd" / MSRVTT
    report = run_json(capsys, "--config", str(config))
    manifest = json.loads((conformance / "statedicts" / f"statedict_{MSRVTT}").read_text())
    assert report["total_parameters"] == manifest["total_parameters"]
    assert report["state_dict"] == manifest["state_dict"]
    assert report["modalities"] == manifest["ordered_modalities"]


def test_checkpoint_listing_and_fit(conformance, capsys):
    checkpoint = conformance / "checkpoints" / "msrvtt-mini-cecap_seed0_trained_model.pth"
    config = conformance / "configs" / "msrvtt-mini-cecap.json"
    report = run_json(capsys, "--config", str(config), "--checkpoint", str(checkpoint))
    assert report["checkpoint"]["epoch"] == 8 and len(report["checkpoint"]["state_dict"]) == 200
    assert report["mismatches"] == [] and report["total_parameters"] == 272823
    only = run_json(capsys, "--checkpoint", str(checkpoint))
    assert only["arch"] == "CENet" and only["total_state_dict_elements"] == 274337
    assert main(["inspect", "--checkpoint", str(checkpoint)]) == 0
    text = capsys.readouterr().out
    assert "text_pooling.clusters2" in text and "epoch 8" in text


def test_mismatching_checkpoint_exits_1(conformance, tmp_path, capsys):
    config = json.loads((conformance / "configs" / "msrvtt-mini-cecap.json").read_text())
    config["experts"]["ce_shared_dim"] = 16
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(config))
    checkpoint = conformance / "checkpoints" / "msrvtt-mini-cecap_seed0_trained_model.pth"
    assert main(["inspect", "--config", str(path), "--checkpoint", str(checkpoint)]) == 1
    assert "does NOT fit" in capsys.readouterr().out


def test_no_arguments_is_a_user_error(capsys):
    assert main(["inspect"]) == 2
    assert "--config" in capsys.readouterr().err
