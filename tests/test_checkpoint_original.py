"""Original trained_model.pth files load safely in both formats; exports round-trip."""

from __future__ import annotations

import json
import os

import pytest
import torch

from crosskd.checkpoint import (UnsafeCheckpointError, load_original_checkpoint,
                                original_state_dict, save_original_checkpoint)
from crosskd.checkpoint.original import CheckpointError, load_original_state_dict
from crosskd.config import load_config, model_spec
from crosskd.errors import UserError
from crosskd.models import build_model

NAME = "msrvtt-mini-cecap_seed0"


@pytest.mark.parametrize("variant", ["trained_model", "trained_model_legacy_format"])
def test_both_formats_load_with_config_as_plain_data(conformance, variant):
    checkpoint = load_original_checkpoint(conformance / "checkpoints" / f"{NAME}_{variant}.pth")
    meta = json.loads((conformance / "checkpoints" / f"{NAME}_checkpoint_meta.json").read_text())
    reference = torch.load(conformance / "checkpoints" / f"{NAME}_state_dict.pth",
                           weights_only=True)
    assert (checkpoint.arch, checkpoint.epoch) == ("CENet", 8)
    assert checkpoint.monitor_best == pytest.approx(meta["monitor_best"], abs=0)
    assert list(checkpoint.state_dict) == list(reference)
    assert all(torch.equal(checkpoint.state_dict[k], v) for k, v in reference.items())
    assert checkpoint.config == meta["config_resolved"]
    assert isinstance(checkpoint.config["visualizer"]["args"]["src_video_dir"], str)
    json.dumps(checkpoint.config)  # plain data only
    assert checkpoint.optimizer is not None


class RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class WritesFile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("payload_class,refused", [(RunsShell, "system"), (WritesFile, "exec")])
@pytest.mark.parametrize("zip_format", [True, False])
def test_malicious_checkpoint_is_refused_and_payload_never_runs(tmp_path, payload_class,
                                                                 refused, zip_format):
    marker = tmp_path / "marker"
    path = tmp_path / "trained_model.pth"
    torch.save({"arch": "CENet", "state_dict": {"w": torch.ones(2)},
                "config": payload_class(marker)}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UnsafeCheckpointError, match=refused) as info:
        load_original_checkpoint(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, UserError)
    assert not marker.exists()


def test_unknown_class_is_refused_by_name(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {}, "config": torch.nn.Linear(1, 1)}, path)
    with pytest.raises(UnsafeCheckpointError, match="torch.nn.modules.linear.Linear"):
        load_original_checkpoint(path)


def test_missing_and_corrupt_files_are_user_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_original_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="bad.pth"):
        load_original_checkpoint(tmp_path / "bad.pth")


def test_export_round_trip_keeps_every_tensor(conformance, tmp_path):
    config = load_config(conformance / "configs" / "msrvtt-mini-cecap.json")
    torch.manual_seed(0)
    model = build_model(model_spec(config))
    path = save_original_checkpoint(tmp_path / "trained_model.pth", model, config, epoch=3,
                                    monitor_best=12.5)
    loaded = load_original_checkpoint(path)
    assert (loaded.epoch, loaded.monitor_best, loaded.arch) == (3, 12.5, "CENet")
    assert loaded.config == config
    ours = original_state_dict(model)
    assert list(loaded.state_dict) == list(ours)
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in ours.items())
    fresh = build_model(model_spec(config))
    load_original_state_dict(fresh, loaded.state_dict)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in ours.items())
    # a plain weights-only torch.load (e.g. by the original code) reads the export too
    assert torch.load(path, weights_only=True)["epoch"] == 3


def test_state_dict_for_another_config_is_explained(conformance):
    config = load_config(conformance / "configs" / "msrvtt-mini-cecap.json")
    config["experts"]["ce_shared_dim"] = 16
    checkpoint = load_original_checkpoint(
        conformance / "checkpoints" / f"{NAME}_trained_model.pth")
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_original_state_dict(build_model(model_spec(config)), checkpoint.state_dict)
