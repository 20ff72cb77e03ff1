"""Which files under a dataset's feature folder a config needs, to check an unpacked tarball.

Built from crosskd.data.layouts (the file names the data loader reads), so the check after a
download and the loader can never disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from crosskd.config import with_eval_settings
from crosskd.data.layouts import expert_paths, get_layout, split_lists, text_feat_path

Config = Mapping[str, Any]
DEFAULT_ROOT_FEAT_FOLDER = "high-quality/structured-symlinks"


def required_files(config: Config) -> list[str]:
    """Paths, relative to `<data_dir>/<root_feat_folder>`, that training and testing `config` read."""
    args = config["data_loader"]["args"]
    layout = get_layout(args["dataset_name"])
    eval_split = with_eval_settings(dict(config))["data_loader"]["args"]["split_name"]
    files: list[str] = []
    for split in dict.fromkeys((args["split_name"], eval_split)):
        files += split_lists(layout, split)
        if split in layout.caption_index_files:
            files.append(layout.caption_index_files[split])
    for expert in config["experts"]["modalities"]:
        files += expert_paths(layout, expert, args.get("feat_aggregation", {}))
    files.append(text_feat_path(layout, config["experts"]["text_feat"]))
    files += (layout.raw_captions, *layout.extra_files)
    if config.get("distil_loss"):
        files += [f"teachers/{name}" for name in config["distil_params"]["teachers"]]
    return list(dict.fromkeys(files))


def missing_files(dataset_dir: str | Path, config: Config) -> list[str]:
    """The required files of `config` that are absent under `dataset_dir/<root_feat_folder>`."""
    folder = config["data_loader"]["args"].get("root_feat_folder", DEFAULT_ROOT_FEAT_FOLDER)
    feat_root = Path(dataset_dir) / folder
    return [name for name in required_files(config) if not (feat_root / name).is_file()]


VARIANTS = ("cecap", "ttcap")


def published_config_name(folder: str, variant: str) -> str:
    """File name of a model-zoo config, e.g. `msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json`."""
    return f"{folder.lower()}-train-gpt2-xl-finetuned-mte-adam-{variant}.json"


def default_config_dir() -> Path:
    """`./configs` when run from a checkout, else the configs folder beside the installed sources."""
    local = Path("configs")
    return local if local.is_dir() else Path(__file__).resolve().parents[3] / "configs"
