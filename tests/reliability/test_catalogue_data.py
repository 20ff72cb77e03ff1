"""Bad-input catalogue, data rows (docs/BAD_INPUTS.md D1-D8): damaged or inconsistent datasets.

Each test damages a private copy of a tiny synthetic dataset, runs `crosskd train` and checks
the one-line message, the exit status and that nothing was presented as a finished run.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from reliability_support import SCENE_FILE, TEXT_FILE, assert_one_line_error

SCENE = "scene.densenet161.0"


def _train(cli, workspace):
    return cli("train", "--config", workspace.config_path, "--out", workspace.save_dir / "out.json")


def _assert_nothing_reported(workspace):
    """A data error stops before training: no run folder, no metrics file."""
    assert not (workspace.save_dir / "out.json").exists()
    assert not list(workspace.save_dir.glob("*/*/test_metrics.json"))


def test_d1_truncated_expert_pickle(cli, workspace):
    path = workspace.feature_root / SCENE_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_one_line_error(_train(cli, workspace), str(path), "truncated or corrupt",
                          "download or extract it again")
    _assert_nothing_reported(workspace)


class _Exploit:
    """Pickles to a call of os.system: loading it unrestricted would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_d2_pickle_with_a_disallowed_class_is_refused_without_running_it(cli, workspace):
    marker = workspace.save_dir.parent / "pwned"
    path = workspace.feature_root / SCENE_FILE
    path.write_bytes(pickle.dumps({"video0": _Exploit(marker)}, protocol=2))
    line = assert_one_line_error(_train(cli, workspace), str(path), "refusing to load",
                                 "allow-list")
    assert "system" in line
    assert not marker.exists(), "the pickle's code ran"
    _assert_nothing_reported(workspace)


def test_d3_expert_with_the_wrong_dimension(cli, workspace):
    path = workspace.rewrite_pickle(
        SCENE_FILE, lambda d: {k: (np.concatenate([v, v]) if isinstance(v, np.ndarray) else v)
                               for k, v in d.items()})
    assert_one_line_error(_train(cli, workspace), f"expert {SCENE}", str(path), "12-d",
                          "expects 6-d", "feat_dims")
    _assert_nothing_reported(workspace)


def _poison_first_available(value):
    def change(data):
        key = next(k for k, v in data.items() if isinstance(v, np.ndarray))
        data[key] = data[key].copy()
        data[key][0] = value
        return data
    return change


def test_d4_nan_in_an_available_expert(cli, workspace):
    path = workspace.rewrite_pickle(SCENE_FILE, _poison_first_available(np.nan))
    assert_one_line_error(_train(cli, workspace), f"expert {SCENE}", str(path),
                          "NaN/inf", "single float NaN")
    _assert_nothing_reported(workspace)


def test_d4b_inf_in_an_available_expert(cli, workspace):
    path = workspace.rewrite_pickle(SCENE_FILE, _poison_first_available(np.inf))
    assert_one_line_error(_train(cli, workspace), str(path), "NaN/inf")
    _assert_nothing_reported(workspace)


def _train_ids(workspace):
    return (workspace.feature_root / "train_list_full.txt").read_text().split()


def test_d5_video_with_no_caption(cli, workspace):
    victim = _train_ids(workspace)[0]

    def empty_captions(data):
        data[victim] = []
        return data

    path = workspace.rewrite_pickle(TEXT_FILE, empty_captions)
    assert_one_line_error(_train(cli, workspace), str(path), "no caption", victim)
    _assert_nothing_reported(workspace)


def test_d6_split_id_absent_from_the_features(cli, workspace):
    victim = _train_ids(workspace)[1]

    def drop(data):
        del data[victim]
        return data

    workspace.rewrite_pickle(SCENE_FILE, drop)
    assert_one_line_error(_train(cli, workspace), victim, SCENE)
    _assert_nothing_reported(workspace)


def test_d7_missing_expert_file(cli, workspace):
    path = workspace.feature_root / SCENE_FILE
    path.unlink()
    assert_one_line_error(_train(cli, workspace), str(path), SCENE)
    _assert_nothing_reported(workspace)


def test_d8_data_dir_that_does_not_exist(cli, workspace):
    config = workspace.config
    config["data_loader"]["args"]["data_dir"] = str(workspace.data_dir / "nowhere")
    workspace.write_config(config)
    assert_one_line_error(_train(cli, workspace), "nowhere", "data_dir")
    _assert_nothing_reported(workspace)


def test_d9_split_list_naming_a_video_twice(cli, workspace):
    path = workspace.feature_root / "train_list_full.txt"
    ids = path.read_text().split()
    path.write_text("\n".join([*ids, ids[1]]) + "\n", encoding="utf-8")
    line = assert_one_line_error(_train(cli, workspace), str(path), repr(ids[1]), "2 times",
                                 f"lines 2, {len(ids) + 1}", "published protocol")
    assert "download" not in line
    _assert_nothing_reported(workspace)
    assert workspace.run_dirs() == []


def test_d10_empty_split_list_is_named(cli, workspace):
    path = workspace.feature_root / "train_list_full.txt"
    path.write_text("\n\n", encoding="utf-8")
    assert_one_line_error(_train(cli, workspace), str(path), "names no video")
    _assert_nothing_reported(workspace)
    assert workspace.run_dirs() == []


@pytest.mark.parametrize("caption, shown", [
    (np.zeros((2, 3, 4), np.float32), "3-d float32 array of shape (2, 3, 4)"),
    (np.array(["a man", "sings"]), "1-d <U5 array"),
])
def test_d11_caption_array_of_the_wrong_rank_or_dtype(cli, workspace, caption, shown):
    victim = _train_ids(workspace)[0]

    def replace(data):
        data[victim] = [caption]
        return data

    path = workspace.rewrite_pickle(TEXT_FILE, replace)
    line = assert_one_line_error(_train(cli, workspace), str(path), repr(victim), shown,
                                 "one per caption")
    assert "SpooledArray" not in line
    _assert_nothing_reported(workspace)
