"""Every data mistake ends in a UserError that names the file/expert/video and the fix."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from crosskd.config import data_spec
from crosskd.cli import main
from crosskd.data import errors, layouts
from crosskd.data.retrieval import RetrievalData
from crosskd.data.synth import SynthSpec, example_config, write_synthetic
from crosskd.safe_pickle import CorruptPickleError, UnsafePickleError

SCENE = "scene.densenet161.0"


@pytest.fixture()
def dataset(tmp_path):
    spec = SynthSpec(videos=40, seed=3, expert_store=None)
    write_synthetic(spec, tmp_path / "data")
    root = tmp_path / "data" / "high-quality/structured-symlinks"
    config = example_config(spec, tmp_path / "data", split_name="full-test")
    return spec, root, config


def _scene_path(root, config):
    (relative,) = layouts.expert_paths(layouts.get_layout("MSRVTT"), SCENE,
                                       config["data_loader"]["args"]["feat_aggregation"])
    return root / relative


def _rewrite(path, change):
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    change(data)
    with open(path, "wb") as handle:
        pickle.dump(data, handle)


def _load(config):
    return RetrievalData.load(data_spec(config))


def test_missing_data_dir(dataset, tmp_path):
    _, _, config = dataset
    config["data_loader"]["args"]["data_dir"] = str(tmp_path / "nowhere")
    with pytest.raises(errors.MissingDataDirError, match="nowhere.*data_dir"):
        _load(config)


def test_missing_split_list(dataset):
    _, root, config = dataset
    (root / "test_list_full.txt").unlink()
    with pytest.raises(errors.MissingFileError, match="test_list_full.txt.*full-test"):
        _load(config)


def test_missing_expert_file_names_expert_and_file(dataset):
    _, root, config = dataset
    _scene_path(root, config).unlink()
    with pytest.raises(errors.MissingFileError,
                       match=r"scene\.densenet161\.0 expert file.*densenet161-avg\.pickle.*tarball"):
        _load(config)


def test_video_absent_from_feature_file(dataset):
    _, root, config = dataset
    video = (root / "test_list_full.txt").read_text().split()[0]
    _rewrite(_scene_path(root, config), lambda d: d.pop(video))
    with pytest.raises(errors.MissingVideoError, match=f"{SCENE}.*{video}"):
        _load(config)


def test_wrong_feature_dimension(dataset):
    _, _, config = dataset
    config["data_loader"]["args"]["feat_aggregation"][SCENE]["feat_dims"]["embed"] = 97
    with pytest.raises(errors.FeatureDimError, match=f"{SCENE}.*96-d.*97-d"):
        _load(config)


def test_truncated_pickle(dataset):
    _, root, config = dataset
    path = _scene_path(root, config)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CorruptPickleError, match="densenet161-avg.pickle.*truncated"):
        _load(config)


def test_disallowed_class_in_a_feature_file(dataset):
    _, root, config = dataset
    _rewrite(_scene_path(root, config), lambda d: d.update(extra=print))
    with pytest.raises(UnsafePickleError, match="densenet161-avg.pickle.*builtins.print"):
        _load(config)


def test_nan_inside_available_expert(dataset):
    _, root, config = dataset
    video = (root / "train_list_full.txt").read_text().split()[1]

    def poison(data):
        data[video] = np.full(96, np.inf, np.float32)
    _rewrite(_scene_path(root, config), poison)
    with pytest.raises(errors.NonFiniteFeatureError, match=f"{SCENE}.*{video}"):
        _load(config)


def test_video_with_zero_captions(dataset):
    _, root, config = dataset
    video = (root / "test_list_full.txt").read_text().split()[2]
    _rewrite(root / "aggregated_text_feats/w2v.pkl", lambda d: d.update({video: []}))
    with pytest.raises(errors.NoCaptionsError, match=f"w2v.pkl.*{video}"):
        _load(config)


def test_missing_teacher_file(dataset):
    _, root, config = dataset
    config["distil_loss"] = True
    (root / "teachers/train-full-ce-refined-text-gpt2-xl.pkl").unlink()
    with pytest.raises(errors.MissingFileError, match="teacher.*gpt2-xl.pkl"):
        _load(config)


def test_unknown_split(dataset):
    _, _, config = dataset
    config["data_loader"]["args"]["split_name"] = "val1"
    with pytest.raises(errors.DataError, match="MSRVTT has no split 'val1'.*full-val"):
        _load(config)


def test_cli_turns_errors_into_one_line(tmp_path, capsys):
    assert main(["synth", "--dataset", "MSRVTT", "--out", str(tmp_path), "--videos", "3"]) == 2
    assert "at least 10 videos" in capsys.readouterr().err


def test_changed_source_file_invalidates_cache(dataset, tmp_path):
    _, root, config = dataset
    cache = tmp_path / "cache"
    before = RetrievalData.load(data_spec(config), cache_dir=cache)
    video = before.eval.video_ids[0]
    _rewrite(_scene_path(root, config), lambda d: d.update({video: np.ones(96, np.float32)}))
    after = RetrievalData.load(data_spec(config), cache_dir=cache)
    assert after.eval.batch(np.arange(1)).experts[SCENE].numpy().tolist() == [[1.0] * 96]


@pytest.mark.parametrize("key, value", [("text_dropout", 0.1), ("restrict_train_captions", 5),
                                        ("caption_masks", "masks.pkl")])
def test_unsupported_loader_option_is_refused_not_ignored(dataset, key, value):
    _, _, config = dataset
    config["data_loader"]["args"][key] = value
    with pytest.raises(errors.DataError, match=f"data_loader.args.{key}.*not supported"):
        _load(config)


def test_binarised_expert_is_refused(dataset):
    _, _, config = dataset
    config["data_loader"]["args"]["feat_aggregation"].setdefault(SCENE, {})["binarise"] = True
    with pytest.raises(errors.DataError, match=f'"{SCENE}".binarise'):
        _load(config)
