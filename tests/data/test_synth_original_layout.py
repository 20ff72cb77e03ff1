"""The benchmark's synthetic MSRVTT follows the original's loaders (as ../shared/docs/LAYOUTS.md
and the conformance README describe them), so the original can read it too.

The rules are written out here from those documents, not taken from crosskd.data.layouts, so a
mistake in our layout code cannot hide the same mistake in the generator.
"""

from __future__ import annotations

import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest

from crosskd import shipped
from crosskd.config import load_config
from crosskd.data.synth import write_synthetic
from crosskd.synth_like import LikeSizes, spec_like

CONFIG = "msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json"
#: the benchmark's settings (benchmarks/_msrvtt_bench.py bench_sizes) at a test's counts.
SIZES = LikeSizes(videos=24, captions_per_video=3, caption_tokens=(6, 18), max_expert_tokens=32,
                  topics=64, latent_dim=64, missing_fraction={"audio": 0.1, "speech": 0.3},
                  fewer_captions_fraction=0.0, expert_store=False)
#: MSRVTT's experts at fixed paths (LAYOUTS.md) and their token widths.
CUSTOM = {"audio": ("aggregated_audio_feats/Audio_MSRVTT_new.pickle", 128),
          "speech": ("aggregated_speech/speech-w2v.pickle", 300)}
LISTS = ("train_list_full.txt", "val_list_full.txt", "test_list_full.txt")


def _visual_path(expert: str, agg: dict) -> str:
    """`aggregated_<type>_<fps>fps_<pixel_dim>px_stride<stride>[_offset<o>][_inner_stride<i>]
    [_num_segments<n>]/<model>-<temporal>.pickle` (one temporal statistic)."""
    kind, model, _ = expert.split(".")
    folder = f"aggregated_{kind.replace('-', '_')}_{agg['fps']}fps_{agg['pixel_dim']}px_stride" \
             f"{agg['stride']}"
    folder += "".join(f"_{key}{agg[key]}" for key in ("offset", "inner_stride", "num_segments")
                      if agg.get(key) is not None)
    return f"{folder}/{model}-{agg['temporal']}.pickle"


def _plain(path: Path) -> object:
    """Load a pickle, checking it names only builtins and numpy (no crosskd or original class)."""
    data = path.read_bytes()
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("GLOBAL", "STACK_GLOBAL") and isinstance(arg, str):
            assert arg.split()[0].split(".")[0] in {"numpy", "builtins", "_codecs"}, (path, arg)
    return pickle.loads(data)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[dict, Path]:
    config = load_config(shipped.config_dir() / CONFIG)
    out = tmp_path_factory.mktemp("bench-msrvtt")
    config["data_loader"]["args"]["data_dir"] = str(out)
    write_synthetic(spec_like(config, SIZES), out)
    return config, out / config["data_loader"]["args"]["root_feat_folder"]


def _videos(root: Path) -> dict[str, list[str]]:
    return {name: (root / name).read_text().split() for name in LISTS}


def test_split_lists_and_captions(dataset):
    config, root = dataset
    videos = sorted(v for ids in _videos(root).values() for v in ids)
    assert all(_videos(root).values()) and len(set(videos)) == len(videos)
    text = _plain(root / f"aggregated_text_feats/{config['experts']['text_feat']}.pkl")
    raw = _plain(root / "raw-captions.pkl")
    for vid in videos:
        captions = text[vid]
        assert isinstance(captions, list) and len(captions) == len(raw[vid]) >= 1
        for tokens in captions:
            assert tokens.dtype == np.float32 and tokens.ndim == 2 and tokens.shape[0] >= 1
            assert tokens.shape[1] == 1600  # gpt2-xl-finetune
        assert all(isinstance(words, list) and words for words in raw[vid])


def test_every_expert_at_the_path_and_width_the_original_reads(dataset):
    config, root = dataset
    aggregation = config["data_loader"]["args"]["feat_aggregation"]
    videos = [v for ids in _videos(root).values() for v in ids]
    missing = {}
    for expert in config["experts"]["modalities"]:
        if expert in CUSTOM:
            relative, width = CUSTOM[expert]
            shape = (None, width)
        else:
            relative = _visual_path(expert, aggregation[expert])
            shape = (aggregation[expert]["feat_dims"]["embed"],)
        features = _plain(root / relative)
        missing[expert] = 0
        for vid in videos:
            value = features[vid]
            if isinstance(value, float):  # a missing flaky expert is a float NaN
                assert expert in CUSTOM and np.isnan(value)
                missing[expert] += 1
                continue
            assert value.dtype == np.float32 and value.ndim == len(shape)
            assert all(want in (None, got) for want, got in zip(shape, value.shape)), expert
    assert missing["scene.densenet161.0"] == 0 and missing["speech"] > 0


def test_teachers_are_ce_shared_dim_wide_even_with_distillation_off(dataset):
    """The original's collate allocates [batch, ce_shared_dim] per teacher modality and reads
    the teachers whenever distil_params lists them, distil_loss or not."""
    config, root = dataset
    assert config["distil_loss"] is False
    width = config["experts"]["ce_shared_dim"]
    captions = _plain(root / "raw-captions.pkl")
    for name in config["distil_params"]["teachers"]:
        teacher = _plain(root / "teachers" / name)
        modalities = None
        for vid in _videos(root)["train_list_full.txt"]:
            video, text = teacher[vid]["vid_embds"], teacher[vid]["text_embds"]
            assert set(video) == set(text) and (modalities is None or set(video) == modalities)
            modalities = set(video)
            for modality in modalities:
                assert video[modality].shape == (width,)
                assert text[modality].shape == (len(captions[vid]), width)
