"""`crosskd synth --like`: data shaped like a config, for every config crosskd ships."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from crosskd import shipped
from crosskd.cli import main
from crosskd.config import apply_overrides, load_config, parse_experiment
from crosskd.data.retrieval import RetrievalData
from crosskd.synth_like import LikeSizes, write_like
from crosskd.download.required import missing_files, required_files
from crosskd.process import detect
from crosskd.train.assembly import build_training
from crosskd.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

#: as few videos as leave every split list of every layout at least one video.
TINY = LikeSizes(videos=20, captions_per_video=2, caption_tokens=(2, 3), max_expert_tokens=3)


def test_every_file_a_config_reads_is_written_and_the_config_points_at_it(tmp_path, capsys):
    name = "msrvtt-train-gpt2-xl-finetuned-mte-adam-ttcap.json"
    assert main(["synth", "--like", f"configs/{name}", "--out", str(tmp_path / "d"),
                 "--videos", "12", "--captions", "3"]) == 0
    written = tmp_path / "d" / "config.json"
    assert capsys.readouterr().out.strip() == str(written)
    config = json.loads(written.read_text())
    original = load_config(shipped.config_dir() / name)
    assert config["data_loader"]["args"]["data_dir"] == str((tmp_path / "d").resolve())
    config["data_loader"]["args"]["data_dir"] = original["data_loader"]["args"]["data_dir"]
    assert config == original
    assert missing_files(tmp_path / "d", config) == []
    assert any(path.startswith("teachers/") for path in required_files(config))


#: configs whose files depend on the split or the text model (per-split text features, the
#: 1k-A caption index, the 1k-B antoine features), as --set would make them.
SPLIT_SHAPED = {
    "activity-net openai": ("base/activity-net.json", [("experts.text_feat", '"openai"')]),
    "msvd openai": ("base/msvd.json", [("experts.text_feat", '"openai"')]),
    "msrvtt jsfusion": ("base/msrvtt.json", [("data_loader.args.split_name", '"jsfusion"'),
                                             ("eval_settings", "null")]),
    "msrvtt miech": ("base/msrvtt.json", [
        ("data_loader.args.split_name", '"miech"'), ("eval_settings", "null"),
        ("experts.modalities", '["antoine-rgb", "flow", "audio", "scene.densenet161.0"]')]),
}


@pytest.mark.parametrize("case", sorted(SPLIT_SHAPED))
def test_files_of_one_split_or_text_model_are_written_and_read(case, tmp_path):
    name, overrides = SPLIT_SHAPED[case]
    config = apply_overrides(load_config(shipped.config_dir() / name), overrides)
    path = write_like(config, tmp_path / "data", TINY)
    shaped = load_config(path)
    assert missing_files(tmp_path / "data", shaped) == []
    experiment = parse_experiment(shaped)
    data = RetrievalData.load(experiment.data)
    assert data.train.num_videos >= 2 and data.eval.num_queries >= 1
    if case == "msrvtt jsfusion":
        assert data.eval.num_queries == data.eval.num_videos  # one caption per video


@pytest.mark.slow
@pytest.mark.parametrize("name", shipped.experiment_configs())
def test_every_shipped_config_trains_a_batch_on_data_shaped_like_it(name, tmp_path):
    path = write_like(load_config(shipped.config_dir() / name), tmp_path / "data", TINY)
    config = apply_overrides(load_config(path), [("data_loader.args.batch_size", "4")])
    experiment = parse_experiment(config)
    context = detect(torch.device("cpu"), experiment.runtime.amp, environ={})
    trainer = Trainer(build_training(experiment, context), tmp_path / "run")
    before = {key: value.clone() for key, value in trainer.model.state_dict().items()
              if "video_GU" in key}
    draw = next(trainer.sampler.epoch(np.random.default_rng(0)))
    _, values = trainer.runner(1, trainer.train_batches.batch(draw))
    assert values and all(math.isfinite(value) for value in values.values())
    after = trainer.model.state_dict()
    assert any(not torch.equal(after[key], value) for key, value in before.items())
    final = RetrievalData.load(experiment.evaluation().data)
    assert final.eval.num_videos >= 1 and final.eval.num_queries >= 1


#: a shipped config that lists teachers and reads the expert store (scene, senet, ...).
LIKE = "msrvtt-train-gpt2-xl-finetuned-mte-adam-ttcap.json"
SENET = "imagenet.senet154.0"


def _like_config(tmp_path, *changes) -> str:
    """The shipped config with `(key path, JSON value)` overrides, written to a file."""
    config = apply_overrides(load_config(shipped.config_dir() / LIKE), changes)
    path = tmp_path / "downloaded.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return str(path)


def _files(folder):
    return sorted(str(p) for p in folder.rglob("*")) if folder.exists() else []


def _refused(capsys, argv, *fragments) -> str:
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse refusing a flag
        status = stop.code
    assert status == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    for fragment in fragments:
        assert fragment in line, line
    return line


AGGREGATION = f'data_loader.args.feat_aggregation."{SENET}"'
#: case -> (key path, JSON value, the key the message names)
ESCAPES = {
    "teacher ..": ("distil_params.teachers", '["../../../../victim.pkl"]',
                   "distil_params.teachers"),
    "teacher absolute": ("distil_params.teachers", '["{outside}/victim.pkl"]',
                         "distil_params.teachers"),
    "base_path ..": ("distil_params.base_path", '"../../../.."', "distil_params.base_path"),
    "root_feat_folder ..": ("data_loader.args.root_feat_folder", '"../outside"',
                            "data_loader.args.root_feat_folder"),
    "root_feat_folder absolute": ("data_loader.args.root_feat_folder", '"{outside}"',
                                  "data_loader.args.root_feat_folder"),
    "fps ..": (f"{AGGREGATION}.fps", '"x/../../../../../.."', AGGREGATION),
    "offset ..": (f"{AGGREGATION}.offset", '"/../../../.."', AGGREGATION),
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_a_config_cannot_make_synth_write_outside_out(case, tmp_path, capsys):
    key, value, named = ESCAPES[case]
    outside = tmp_path / "outside"
    config = _like_config(tmp_path, (key, value.format(outside=outside)))
    _refused(capsys, ["synth", "--like", config, "--out", str(tmp_path / "out")],
             f"config key {named}", "'..'")
    assert _files(outside) == [] and not list(tmp_path.parent.rglob("victim.pkl"))
    assert not list((tmp_path / "out").rglob("*.pickle"))  # refused before writing


@pytest.mark.parametrize("link", ["high-quality", "high-quality/structured-symlinks/teachers"])
def test_a_symlink_inside_out_does_not_lead_synth_outside(link, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    (out / link).parent.mkdir(parents=True, exist_ok=True)
    (out / link).symlink_to(outside)
    _refused(capsys, ["synth", "--like", f"configs/{LIKE}", "--out", str(out), "--videos", "12"],
             "config key", "points outside")
    assert _files(outside) == [] and not list(out.rglob("*.pickle"))


def test_published_teacher_folders_and_feature_folders_still_work(tmp_path):
    config = apply_overrides(load_config(shipped.config_dir() / LIKE), [
        ("distil_params.base_path", '"/nowhere/teachers/"'),  # the original authors' paths
        ("data_loader.args.root_feat_folder", '"features/./here"')])
    path = write_like(config, tmp_path / "data", TINY)
    assert (tmp_path / "data" / "features" / "here" / "teachers").is_dir()
    data = RetrievalData.load(parse_experiment(load_config(path)).data)
    assert data.train.num_videos >= 2


WIDE = {
    "feat_dims": (f'data_loader.args.feat_aggregation."{SENET}".feat_dims.embed', "1000000000"),
    "ce_shared_dim": ("experts.ce_shared_dim", "1000000000"),
    "teachers": ("distil_params.teachers", json.dumps([f"t{i}.pkl" for i in range(1000)])),
}


@pytest.mark.parametrize("case", sorted(WIDE))
def test_absurd_widths_and_counts_in_a_config_are_refused_by_key(case, tmp_path, capsys):
    key, value = WIDE[case]
    _refused(capsys, ["synth", "--like", _like_config(tmp_path, (key, value)),
                      "--out", str(tmp_path / "out")], f"config key {key}", "out of range")
    assert not list((tmp_path / "out").rglob("*.pickle"))


@pytest.mark.parametrize("argv, fragments", [
    (["--videos", "٣٠"], ["--videos", "'٣٠'", "ASCII digits"]),
    (["--videos", "-40"], ["--videos", "out of range"]),
    (["--captions", "0"], ["--captions", "out of range"]),
    (["--expert-dim", "1000000000"], ["--expert-dim", "1 to 65536"]),
    (["--caption-tokens", "2", "１０"], ["--caption-tokens", "ASCII digits"]),
    (["--seed", "-1"], ["--seed", "out of range"]),
    (["--videos", "1000000", "--captions", "1000"], ["GiB to write", "limit", "text features"]),
])
def test_synth_counts_are_ascii_whole_numbers_in_range(argv, fragments, tmp_path, capsys):
    _refused(capsys, ["synth", "--out", str(tmp_path / "out"), *argv], *fragments)
    assert not list((tmp_path / "out").rglob("*.pickle"))


def test_caption_tokens_fit_a_config_that_allows_fewer_than_the_default_minimum(tmp_path):
    config = apply_overrides(load_config(shipped.config_dir() / LIKE),
                             [("data_loader.args.max_tokens.text", "1")])
    path = write_like(config, tmp_path / "data", LikeSizes(videos=20, captions_per_video=2,
                                                           max_expert_tokens=1))
    assert missing_files(tmp_path / "data", load_config(path)) == []
