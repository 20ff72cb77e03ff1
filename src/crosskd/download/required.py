"""Which files under a dataset's feature folder a config needs, to check an unpacked tarball.

Built from crosskd.data.layouts (the file names the data loader reads), so the check after a
download and the loader can never disagree.
"""

from __future__ import annotations

from pathlib import Path

from crosskd.config import Config, with_eval_settings
from crosskd.data.layouts import expert_paths, get_layout, split_lists, text_feat_paths


def required_files(config: Config) -> list[str]:
    """Paths, relative to `<data_dir>/<root_feat_folder>`, that training and testing `config` read."""
    from crosskd.config import data_spec  # the data part names the model's widths: torch
    data = data_spec(config)
    layout = get_layout(data.dataset_name)
    files: list[str] = []
    for split in dict.fromkeys((data.split_name, data_spec(with_eval_settings(config)).split_name)):
        files += split_lists(layout, split)
        if split in layout.caption_index_files:
            files.append(layout.caption_index_files[split])
        for expert in data.modalities:
            files += expert_paths(layout, expert, data.aggregation, split)
        files += text_feat_paths(layout, data.text_feat, split)
    files += (layout.raw_captions, *layout.extra_files)
    files += [f"teachers/{name}" for name in data.teachers]
    return list(dict.fromkeys(files))


def missing_files(dataset_dir: str | Path, config: Config) -> list[str]:
    """The required files of `config` that are absent under `dataset_dir/<root_feat_folder>`."""
    from crosskd.config import data_spec
    feat_root = Path(dataset_dir) / data_spec(config).root_feat_folder
    return [name for name in required_files(config) if not (feat_root / name).is_file()]


VARIANTS = ("cecap", "ttcap")


def published_config_name(folder: str, variant: str) -> str:
    """File name of a model-zoo config, e.g. `msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json`."""
    return f"{folder.lower()}-train-gpt2-xl-finetuned-mte-adam-{variant}.json"
