"""Files the original reads for some splits and text models only, on synthetic data in that
layout: ActivityNet's and MSVD's per-split `openai` text features (MSVD's keyed by YouTube
name) and MSRVTT's `miech` (1k-B) split with its own `antoine/` features."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from crosskd.config import data_spec
from crosskd.data import layouts
from crosskd.data.errors import DataError
from crosskd.data.retrieval import RetrievalData
from crosskd.data.store import load_packed
from crosskd.data.synth import SynthSpec, example_config, write_synthetic
from crosskd.data.text_sources import captions_for

OPENAI = {"ActivityNet": ("val1", "openai-train.pkl", "openai-val1.pkl"),
          "MSVD": ("official", "openai-caption-train.pkl", "openai-caption-test.pkl")}


def _read(path: Path):
    with open(path, "rb") as handle:
        return pickle.load(handle)


def _tiny(dataset: str, **changes) -> SynthSpec:
    return SynthSpec(dataset=dataset, videos=30, captions_per_video=3, caption_tokens=(2, 4),
                     max_expert_tokens=3, visual_dims={"scene.densenet161.0": 6}, **changes)


@pytest.mark.parametrize("dataset", sorted(OPENAI))
def test_openai_text_features_are_the_training_file_updated_by_the_split_file(dataset,
                                                                              tmp_path):
    split, train_file, split_file = OPENAI[dataset]
    spec = _tiny(dataset, text_feat="openai", text_dim=768)
    root = write_synthetic(spec, tmp_path / "data")
    config = example_config(spec, tmp_path / "data", split_name=split)
    data = RetrievalData.load(data_spec(config), cache_dir=tmp_path / "cache")
    names = {vid: vid for vid in data.train.video_ids + data.eval.video_ids}
    if dataset == "MSVD":  # keyed by YouTube name, mapped back through the mapping file
        names = _read(root / "dict_youtube_mapping.pkl")
    train = _read(root / "aggregated_text_feats" / train_file)
    evaluation = _read(root / "aggregated_text_feats" / split_file)
    assert set(train) == {names[v] for v in data.train.video_ids}
    assert set(evaluation) == {names[v] for v in data.eval.video_ids}
    first = data.eval.video_ids[0]
    batch = data.eval.batch(np.arange(1))
    caption = evaluation[names[first]][0][:12]
    np.testing.assert_array_equal(batch.text[0, 0, :len(caption)].numpy(), caption)
    assert batch.text.shape[-1] == 768


def test_activitynet_openai_features_exist_for_val1_only():
    layout = layouts.get_layout("ActivityNet")
    with pytest.raises(DataError, match="exist for split.*val1.*not 'val'"):
        layouts.text_feat_paths(layout, "openai", "val")


def test_a_list_spanning_several_text_files_reads_the_later_file_where_both_have_a_video(
        tmp_path):
    spec = _tiny("ActivityNet", text_feat="openai", text_dim=768)
    root = write_synthetic(spec, tmp_path / "data") / "aggregated_text_feats"
    first, second = (load_packed(root / name, "captions", tmp_path / "cache")
                     for name in ("openai-train.pkl", "openai-val1.pkl"))
    ids = [first.keys[0], second.keys[0]]
    merged = captions_for([first, second], ids)
    assert set(merged.keys) == set(first.keys) | set(second.keys)
    rows = merged.positions(ids, "text")
    for vid, packed, pos in zip(ids, (first, second), rows):
        (own,) = packed.positions([vid], "text")
        cap, own_cap = merged.index["first"][pos], packed.index["first"][own]
        start, own_start = merged.index["cap_start"][cap], packed.index["cap_start"][own_cap]
        count = packed.index["cap_rows"][own_cap]
        np.testing.assert_array_equal(merged.values[start:start + count],
                                      packed.values[own_start:own_start + count])
    assert captions_for([first, second], [second.keys[0]]) is second


def test_the_miech_split_reads_the_antoine_features(tmp_path):
    spec = SynthSpec(dataset="MSRVTT", videos=40, captions_per_video=3, caption_tokens=(2, 4),
                     max_expert_tokens=3, token_experts=("audio",),
                     visual_dims={"antoine-rgb": 10, "flow": 6, "scene.densenet161.0": 4})
    root = write_synthetic(spec, tmp_path / "data")
    config = example_config(spec, tmp_path / "data", split_name="miech")
    data = RetrievalData.load(data_spec(config), cache_dir=tmp_path / "cache")
    rgb = _read(root / "antoine/resnet_features.pickle")
    vid = data.eval.video_ids[0]
    batch = data.eval.batch(np.arange(1))
    np.testing.assert_array_equal(batch.experts["antoine-rgb"][0].numpy(), rgb[vid])
    assert (root / "antoine/audio_features.pickle").is_file()
    assert (root / "aggregated_audio_feats/Audio_MSRVTT_new.pickle").is_file()
    config["data_loader"]["args"]["split_name"] = "full-val"
    with pytest.raises(DataError, match="antoine-rgb.*split 'miech' only"):
        RetrievalData.load(data_spec(config), cache_dir=tmp_path / "cache")
    assert layouts.expert_paths(layouts.get_layout("MSRVTT"), "audio", {}, "miech") == (
        "antoine/audio_features.pickle",)
