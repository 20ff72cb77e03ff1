"""Generator + loader round trip for all four layouts, and the synthetic data's structure."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from crosskd.config import data_spec
from crosskd.data.sampling import epoch_batches
from crosskd.cli import main
from crosskd.data import layouts
from crosskd.data.retrieval import RetrievalData
from crosskd.data.synth import SynthSpec, example_config, write_synthetic


@pytest.fixture(scope="module", params=sorted(layouts.LAYOUTS))
def synthetic(request, tmp_path_factory):
    spec = SynthSpec(dataset=request.param, videos=60, seed=5)
    out = tmp_path_factory.mktemp(request.param)
    write_synthetic(spec, out)
    return spec, out


def test_every_split_of_the_layout_loads(synthetic, tmp_path):
    spec, out = synthetic
    layout = layouts.get_layout(spec.dataset)
    for split in layout.splits:
        config = example_config(spec, out, split_name=split)
        config["distil_loss"] = True
        data = RetrievalData.load(data_spec(config), cache_dir=tmp_path)
        train_ids, eval_ids = (layouts.read_split_list(out / "high-quality/structured-symlinks"
                                                       / name, layout, split)
                               for name in layout.splits[split])
        assert data.train.video_ids == train_ids and data.eval.video_ids == eval_ids
        batch = next(epoch_batches(data.train, 8, np.random.default_rng(0)))
        assert set(batch.experts) == set(spec.modalities)
        assert set(batch.distil_video) == {0, 1, 2}
        evaluation = data.eval.batch(np.arange(min(4, data.eval.num_videos)))
        assert evaluation.text.shape[1] == data.eval.protocol["captions_per_video"]


def test_features_round_trip_exactly(synthetic, tmp_path):
    spec, out = synthetic
    root = out / "high-quality/structured-symlinks"
    config = example_config(spec, out)
    data = RetrievalData.load(data_spec(config), cache_dir=tmp_path)
    layout = layouts.get_layout(spec.dataset)
    name = "scene.densenet161.0"
    (relative,) = layouts.expert_paths(layout, name, config["data_loader"]["args"]
                                       ["feat_aggregation"])
    with open(root / relative, "rb") as handle:
        source = pickle.load(handle)
    count = min(5, data.eval.num_videos)
    ids = data.eval.video_ids[:count]
    batch = data.eval.batch(np.arange(count))
    np.testing.assert_array_equal(batch.experts[name].numpy(), np.stack([source[v] for v in ids]))
    split = config["data_loader"]["args"]["split_name"]
    (text_path,) = layouts.text_feat_paths(layout, spec.text_feat, split)
    with open(root / text_path, "rb") as handle:
        text = pickle.load(handle)
    first = text[ids[0]]
    if data.eval.fuse_captions:
        expected = np.concatenate(first)[:12]
        np.testing.assert_array_equal(batch.text[0, 0, :len(expected)].numpy(), expected)
    else:
        for slot, caption in enumerate(first[:batch.text.shape[1]]):
            kept = caption[:12]
            np.testing.assert_array_equal(batch.text[0, slot, :len(kept)].numpy(), kept)
            assert int(batch.text_token_mask[0, slot]) == len(kept)


def test_expert_store_file_loads_like_a_dict(tmp_path):
    spec = SynthSpec(videos=40, seed=1)
    write_synthetic(spec, tmp_path / "a")
    as_dict = SynthSpec(videos=40, seed=1, expert_store=None)
    write_synthetic(as_dict, tmp_path / "b")
    name = spec.expert_store
    loaded = [RetrievalData.load(data_spec(example_config(s, tmp_path / d)), cache_dir=tmp_path / "c")
              for s, d in ((spec, "a"), (as_dict, "b"))]
    left, right = (d.eval.batch(np.arange(2)).experts[name].numpy() for d in loaded)
    np.testing.assert_allclose(left, right, rtol=1e-3, atol=1e-3)  # the store is float16


def test_synthetic_structure_is_realistic(tmp_path):
    spec = SynthSpec(videos=200, seed=2)
    write_synthetic(spec, tmp_path)
    config = example_config(spec, tmp_path, split_name="full-test")
    data = RetrievalData.load(data_spec(config))
    ind = np.stack([data.eval.batch(np.arange(data.eval.num_videos)).ind[m].numpy()
                    for m in ("audio", "speech")])
    assert 0.1 < 1 - ind.mean() < 0.5  # flaky experts are missing for a fraction
    counts = json.loads((tmp_path / "dataset_meta.json").read_text())["num_captions"]
    assert 0 < sum(n < 20 for n in counts.values()) <= 4  # a few videos have fewer captions
    video = data.eval.batch(np.arange(data.eval.num_videos)).experts["imagenet.senet154.0"]
    sims = np.corrcoef(video.numpy())[np.triu_indices(len(video), 1)]
    assert sims.max() > 0.8 and sims.min() < 0.0  # same-topic pairs close, others far


def test_synth_command_writes_a_loadable_dataset(tmp_path):
    assert main(["synth", "--dataset", "MSVD", "--out", str(tmp_path), "--videos", "30",
                 "--captions", "5"]) == 0
    data = RetrievalData.load(data_spec(example_config(SynthSpec(dataset="MSVD", videos=30,
                                                              captions_per_video=5), tmp_path)))
    assert data.eval.protocol["captions_per_video"] == 5
