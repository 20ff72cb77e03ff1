"""Our shipped configs (crosskd/configs/) resolve to the published values of the original configs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from crosskd.config import load_config, model_spec
from crosskd.models import build_model
from crosskd.shipped import config_dir

CONFIGS = config_dir()
DATASETS = ("msrvtt", "msvd", "didemo", "activity-net")
VARIANTS = ("cecap", "ttcap", "ce", "tt")


@pytest.fixture(scope="session")
def reference_configs(conformance: Path) -> Path:
    """The original configs, kept beside the golden data (skip when absent)."""
    path = Path(os.environ.get("CROSSKD_REFERENCE_CONFIGS", conformance.parent / "reference-configs"))
    if not (path / "configs_crosskd").is_dir():
        pytest.skip(f"reference configs not found at {path} (set CROSSKD_REFERENCE_CONFIGS)")
    return path


def ours(dataset: str, variant: str) -> dict:
    return load_config(CONFIGS / f"{dataset}-train-gpt2-xl-finetuned-mte-adam-{variant}.json")


def reference(root: Path, dataset: str, variant: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The original config our variant carries; the baselines come from TeachText-CE+."""
    monkeypatch.chdir(root)  # the originals name their parents relative to their repository root
    if variant in ("cecap", "ttcap"):
        return load_config(f"configs_crosskd/{dataset}-train-gpt2-xl-finetuned-mte-adam-{variant}.json")
    config = load_config(f"configs/{dataset}/train-gpt2-xl-finetuned-mte-adam.json")
    config["distil_loss"] = variant == "tt"
    return config


def values_that_matter(config: dict) -> dict:
    """Everything that changes the data, the model, the training or the evaluation."""
    args = dict(config["data_loader"]["args"])
    args.pop("data_dir")
    used = set(config["experts"]["modalities"])
    args["feat_aggregation"] = {k: v for k, v in args["feat_aggregation"].items() if k in used}
    ranking = bool(config.get("ranking_loss", False))
    return {
        "experts": config["experts"],
        "arch": config["arch"],
        "data_loader": args,
        "optimizer": config["optimizer"],
        "loss": config["loss"],
        "lr_scheduler": config["lr_scheduler"],
        "trainer": {k: config["trainer"][k] for k in ("epochs", "monitor", "val_freq")},
        "eval_settings": config["eval_settings"]["data_loader"],
        "distil_loss": bool(config.get("distil_loss", False)),
        "teachers": config["distil_params"]["teachers"] if config.get("distil_loss") else None,
        "ranking_loss": ranking,
        "ranking_params": config["ranking_params"] if ranking else None,
        "seed": config["seed"],
    }


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_config_carries_published_values(dataset, variant, reference_configs, monkeypatch):
    mine = values_that_matter(ours(dataset, variant))
    theirs = values_that_matter(reference(reference_configs, dataset, variant, monkeypatch))
    assert mine == theirs


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_paths_are_relative_to_the_dataset(dataset, variant):
    config = ours(dataset, variant)
    data_dir = config["data_loader"]["args"]["data_dir"]
    assert data_dir.startswith("data/") and not Path(data_dir).is_absolute()
    assert config["distil_params"]["base_path"] == "teachers/"


def test_eval_settings_select_the_published_test_protocol():
    splits = {ds: ours(ds, "cecap")["eval_settings"]["data_loader"]["args"]["split_name"]
              for ds in DATASETS}
    assert splits == {"msrvtt": "full-test", "msvd": "official", "didemo": "test",
                      "activity-net": "val1"}


def _model_inputs(config: dict) -> dict:
    """The config values a model is built from (the same for every variant of a dataset)."""
    used = set(config["experts"]["modalities"])
    aggregation = config["data_loader"]["args"]["feat_aggregation"]
    return {"experts": config["experts"], "arch": config["arch"],
            "feat_aggregation": {k: v for k, v in aggregation.items() if k in used},
            "max_tokens": config["data_loader"]["args"]["max_tokens"]}


@pytest.mark.parametrize("dataset", DATASETS)
def test_configs_build_the_published_model(dataset, conformance):
    manifest_path = (conformance / "statedicts" /
                     f"statedict_{dataset}-train-gpt2-xl-finetuned-mte-adam-cecap.json")
    manifest = json.loads(manifest_path.read_text())
    configs = [ours(dataset, variant) for variant in VARIANTS]
    assert all(_model_inputs(c) == _model_inputs(configs[0]) for c in configs[1:])
    with torch.device("meta"):  # shapes only: the full-size models hold up to 376M parameters
        model = build_model(model_spec(configs[0]))
    shapes = [(key, list(value.shape)) for key, value in model.state_dict().items()]
    assert shapes == [(entry["key"], entry["shape"]) for entry in manifest["state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == manifest["total_parameters"]
