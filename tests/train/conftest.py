"""A tiny synthetic MSRVTT shared by the training tests that compare two ways of training."""

from __future__ import annotations

import pytest

from crosskd.config import data_spec
from crosskd.data.retrieval import RetrievalData
from crosskd.data.synth import SynthSpec, example_config, write_synthetic


@pytest.fixture(scope="session")
def tiny_msrvtt(tmp_path_factory):
    """`(config, loaded data)`: 60 videos x 3 captions (some fewer), full-val split."""
    spec = SynthSpec(videos=60, captions_per_video=3, fewer_captions_fraction=0.2,
                     caption_tokens=(2, 9), max_expert_tokens=6,
                     visual_dims={n: 10 for n in SynthSpec().visual_dims})
    root = tmp_path_factory.mktemp("tiny-msrvtt") / "MSRVTT"
    write_synthetic(spec, root)
    config = example_config(spec, root, split_name="full-val", max_text_tokens=7)
    return config, RetrievalData.load(data_spec(config))

