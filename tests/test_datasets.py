"""Every dataset spec in crosskd.datasets is whole: a synthetic dataset written from its
defaults has every file its layout names and loads, a published one's tarball entry is well
formed and its published models name configs of that dataset, and one made here (own videos)
says what makes its files. A new spec is tested without a new test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crosskd.config import data_spec, load_config
from crosskd.data.retrieval import RetrievalData
from crosskd.data.synth import SynthSpec, example_config, write_synthetic
from crosskd.datasets import DATASETS, DatasetSpec
from crosskd.download.features import TARBALLS, find_tarball, tarball_url
from crosskd.download.required import VARIANTS, missing_files
from crosskd.download.zoo import ZOO, find_entry
from crosskd.shipped import config_dir

SPECS = list(DATASETS.values())
PUBLISHED = [spec for spec in SPECS if spec.tarball is not None]


@pytest.fixture(scope="module", params=SPECS, ids=lambda spec: spec.name)
def synthetic(request, tmp_path_factory) -> tuple[DatasetSpec, SynthSpec, Path]:
    spec = request.param
    synth = SynthSpec(dataset=spec.name, videos=40, seed=3)
    out = tmp_path_factory.mktemp(spec.name)
    write_synthetic(synth, out)
    return spec, synth, out


def test_every_file_of_every_split_is_where_the_layout_says(synthetic):
    spec, synth, out = synthetic
    for split in spec.layout.splits:
        config = example_config(synth, out, split_name=split)
        config["distil_loss"] = True
        assert missing_files(out, config) == [], split


def test_the_synthetic_defaults_make_a_dataset_that_loads(synthetic, tmp_path):
    spec, synth, out = synthetic
    assert synth.captions_per_video == spec.synth.captions_per_video
    assert synth.token_experts == spec.synth.token_experts
    for split in spec.layout.splits:
        config = example_config(synth, out, split_name=split)
        data = RetrievalData.load(data_spec(config), cache_dir=tmp_path)
        assert data.train.num_videos > 0 and data.eval.num_videos > 0, split
        assert all(video.startswith(spec.synth.video_id_prefix)
                   for video in data.train.video_ids + data.eval.video_ids)
        assert config["data_loader"]["args"]["fuse_captions"] == spec.synth.fuse_captions


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_the_parts_name_the_same_dataset(spec):
    assert spec.layout.name == spec.name
    assert spec.tarball is None or spec.tarball.dataset == spec.name


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_a_dataset_comes_from_a_tarball_or_says_what_makes_it(spec):
    assert (spec.tarball is None) == (spec.layout.made_by is not None)
    if spec.tarball is None:
        assert not spec.models and spec.name not in TARBALLS


@pytest.mark.parametrize("spec", PUBLISHED, ids=lambda spec: spec.name)
def test_the_tarball_entry_is_well_formed(spec):
    tarball = spec.tarball
    assert tarball.releases and all(re.fullmatch("[0-9a-f]{40}", sha1)
                                    for sha1 in tarball.releases)
    assert find_tarball(spec.name.upper()) is tarball is find_tarball(tarball.folder)
    assert tarball_url(tarball, "http://mirror").endswith(
        f"/high-quality-{tarball.folder}-experts.tar.gz")


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_the_published_models_name_configs_of_the_dataset(spec):
    entries = [entry for entry in ZOO if entry.dataset == spec.name]
    assert [entry.variant for entry in entries] == [model.variant for model in spec.models]
    for entry in entries:
        assert entry.variant in VARIANTS and find_entry(entry.name) is entry
        config = load_config(config_dir() / entry.config_name)
        assert config["data_loader"]["args"]["dataset_name"] == spec.name, entry.config_name
