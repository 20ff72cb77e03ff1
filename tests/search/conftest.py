"""A tiny synthetic MSRVTT, a randomly initialised model's checkpoint and its search index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from crosskd.config import as_experiment
from crosskd.data.retrieval import RetrievalData
from crosskd.data.synth import SynthSpec, example_config, write_synthetic
from crosskd.models import build_model
from crosskd.search.bank import BankChoice
from crosskd.search.build import index_from_model
from crosskd.inference import scores_and_querybank

TRAINER = {"optimizer": {"type": "RAdam", "args": {"lr": 0.01}},
           "loss": {"type": "MaxMarginRankingLoss", "args": {"margin": 0.1, "fix_norm": True}},
           "trainer": {"save_dir": "runs", "tensorboard": False,
                       "monitor": "max val_t2v_metrics_R5"}}


def tiny_config(root: Path) -> dict:
    """A config for `write_synthetic(tiny_spec(), root)` whose eval split is full-test."""
    config = {**example_config(tiny_spec(), root, split_name="full-test", max_text_tokens=7),
              **TRAINER}
    config["data_loader"]["args"]["batch_size"] = 8
    return config


def tiny_spec() -> SynthSpec:
    """60 videos (18 in full-test) with 3 captions, some fewer, some experts missing."""
    return SynthSpec(videos=60, captions_per_video=3, fewer_captions_fraction=0.2,
                     caption_tokens=(2, 9), max_expert_tokens=6,
                     visual_dims={n: 10 for n in SynthSpec().visual_dims})


@pytest.fixture(scope="session")
def tiny_collection(tmp_path_factory):
    """`(folder, config, checkpoint path, index path)` of a random model on tiny data."""
    folder = tmp_path_factory.mktemp("search")
    write_synthetic(tiny_spec(), folder / "MSRVTT")
    config = tiny_config(folder / "MSRVTT")
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    torch.manual_seed(0)
    experiment = as_experiment(config)
    model = build_model(experiment.model)
    torch.save(model.state_dict(), folder / "model.pth")
    index = index_from_model(model, experiment, RetrievalData.load(experiment.data))
    index.save(folder / "index")
    return folder, config, folder / "model.pth", folder / "index"


@pytest.fixture(scope="session")
def tiny_qbnorm_index(tiny_collection):
    """The tiny collection's index with QB-Norm (every training caption in the bank, beta 20)
    built from the same model, and the QueryBank evaluation's `test --qbnorm` folds for it."""
    folder, config, checkpoint, _ = tiny_collection
    experiment = as_experiment(config)
    model = build_model(experiment.model)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    data = RetrievalData.load(experiment.data)
    index = index_from_model(model.eval(), experiment, data, qbnorm=BankChoice())
    index.save(folder / "qbnorm-index")
    _, bank = scores_and_querybank(model, data, torch.device("cpu"), BankChoice().beta)
    return folder / "qbnorm-index", bank


#: what the read index's videos read or heard, as extraction.json records it: markup and
#: terminal escapes in video34's, a text longer than an index keeps in video4's, and a value
#: that is no text (left out)
READ = {"video34": {"ocr": '<img src=x onerror="window.__xss = 3">',
                    "speech": "storm \x1b]0;pwned\x07 hits \x1b[2J the coast"},
        "video46": {"ocr": "BREAKING NEWS"},
        "video4": {"speech": "la " * 2000, "ocr": 7}}


@pytest.fixture(scope="session")
def tiny_read_index(tiny_collection, tmp_path_factory):
    """The tiny collection's model indexed from a copy of its dataset whose extraction.json
    records what some videos' experts read or heard: `(index folder, READ)`."""
    folder, _, checkpoint, _ = tiny_collection
    data = tmp_path_factory.mktemp("read") / "MSRVTT"
    shutil.copytree(folder / "MSRVTT", data)
    record = {"videos": {vid: {"texts": texts} for vid, texts in READ.items()}}
    (data / "extraction.json").write_text(json.dumps(record), encoding="utf-8")
    experiment = as_experiment(tiny_config(data))
    model = build_model(experiment.model)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    index = index_from_model(model, experiment, RetrievalData.load(experiment.data))
    index.save(data.parent / "index")
    return data.parent / "index", READ


@pytest.fixture(scope="session")
def own_collection(tmp_path_factory) -> Path:
    """A folder holding an own collection of 10 real videos (clips/), the last 2 without
    captions, extracted with the demo experts (data/), a random model of its config
    (model.pth) and the index of every video (index/)."""
    from crosskd.cli import main
    from own_videos import OWN_NAME, extract, own_index_args, random_model, write_captions, \
        write_clips

    folder = tmp_path_factory.mktemp("own")
    captions = write_clips(folder / "clips", 0, 10)
    write_captions(folder / "captions.jsonl", dict(list(captions.items())[:8]))
    extract(folder / "clips", folder / "data", "--captions", str(folder / "captions.jsonl"),
            "--name", OWN_NAME)
    random_model(folder / "data" / "config.json", folder / "model.pth")
    assert main(own_index_args(folder, folder / "index")) == 0
    return folder


@pytest.fixture(scope="session")
def segmented_collection(tmp_path_factory) -> Path:
    """A folder holding 3 long videos made of 2 s parts (videos/), their segmented dataset
    made by hand (data/, tests/search/segmented.py), a random model of its config
    (model.pth) and the index of every segment (index/)."""
    from crosskd.cli import main
    from own_videos import own_index_args, random_model
    from segmented import make_segmented, write_long_videos

    folder = tmp_path_factory.mktemp("segmented")
    write_long_videos(folder / "videos")
    make_segmented(folder / "videos", folder / "data", folder)
    random_model(folder / "data" / "config.json", folder / "model.pth")
    args = own_index_args(folder, folder / "index")
    args[args.index("--media-root") + 1] = str(folder / "videos")
    assert main(args) == 0
    return folder
