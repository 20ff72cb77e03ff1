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
    trainer = Trainer(experiment, tmp_path / "run", torch.device("cpu"), experiment.seed)
    before = {key: value.clone() for key, value in trainer.model.state_dict().items()
              if "video_GU" in key}
    draw = next(trainer.sampler.epoch(np.random.default_rng(0)))
    _, values = trainer.runner(1, trainer.train_batches.batch(draw))
    assert values and all(math.isfinite(value) for value in values.values())
    after = trainer.model.state_dict()
    assert any(not torch.equal(after[key], value) for key, value in before.items())
    final = RetrievalData.load(experiment.evaluation().data)
    assert final.eval.num_videos >= 1 and final.eval.num_queries >= 1
