"""The model each published config builds has the original's state-dict layout and size."""

from __future__ import annotations

import json

import pytest
import torch

from crosskd.config import load_config, model_spec
from crosskd.config.model import model_dims
from crosskd.errors import UserError
from crosskd.models import build_model

DATASETS = ("activity-net", "didemo", "msrvtt", "msvd")
CONFIGS = [f"{d}-train-gpt2-xl-finetuned-mte-adam-{v}.json"
           for d in DATASETS for v in ("cecap", "ttcap")]


def manifest_and_config(conformance, name):
    manifest = json.loads((conformance / "statedicts" / f"statedict_{name}").read_text())
    config = load_config(conformance.parent / "reference-configs" / "configs_crosskd" / name)
    return manifest, config


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_layout_matches_original(conformance, name):
    manifest, config = manifest_and_config(conformance, name)
    with torch.device("meta"):
        model = build_model(model_spec(config))
    ours = [{"key": k, "shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")}
            for k, v in model.state_dict().items()]
    assert ours == manifest["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == manifest["total_parameters"]
    assert sum(v.numel() for v in model.state_dict().values()) == \
        manifest["total_state_dict_elements"]


@pytest.mark.parametrize("name", CONFIGS)
def test_dims_match_original(conformance, name):
    manifest, config = manifest_and_config(conformance, name)
    dims = model_dims(config)
    assert list(dims.modalities) == manifest["ordered_modalities"]
    assert {k: list(v) for k, v in dims.expert_dims.items()} == manifest["expert_dims"]
    assert dims.raw_input_dims == manifest["raw_input_dims"]
    assert dims.text_dim == manifest["text_dim"]


def test_moee_builds_one_gated_unit_per_expert_and_scores(conformance):
    _, config = manifest_and_config(conformance, CONFIGS[-1])
    config["arch"]["args"]["use_ce"] = ""
    config["experts"]["text_feat"] = "w2v"
    config["arch"]["args"]["vlad_clusters"]["text"] = 2
    model = build_model(model_spec(config)).eval()
    keys = model.state_dict().keys()
    assert not any(k.startswith(("ce.g_reason", "ce.video_dim_reduce")) for k in keys)
    assert model.ce.video_GU[0].fc.in_features == 2048
    experts = {m: torch.randn(3, model.dims.raw_input_dims[m]) for m in model.modalities}
    ind = {m: torch.ones(3) for m in model.modalities}
    out = model(experts, ind, torch.randn(3, 2, 4, 300))
    assert out["cross_view_conf_matrix"].shape == (6, 3)
    assert {k: v.shape[1] for k, v in out["vid_embds"].items()} == \
        {m: d[1] for m, d in model.dims.expert_dims.items()}


@pytest.mark.parametrize("key,value", [("use_ce", "triplet"), ("num_h_layers", 1),
                                       ("l2renorm", True), ("test_caption_mode", "avg")])
def test_unpublished_ablation_settings_are_refused_with_the_key(conformance, key, value):
    _, config = manifest_and_config(conformance, CONFIGS[0])
    config["arch"]["args"][key] = value
    with pytest.raises(UserError, match=f"arch.args.{key}"):
        build_model(model_spec(config))


def test_unknown_text_model_is_a_user_error(conformance):
    _, config = manifest_and_config(conformance, CONFIGS[0])
    config["experts"]["text_feat"] = "gpt5"
    with pytest.raises(UserError, match="experts.text_feat"):
        model_dims(config)
