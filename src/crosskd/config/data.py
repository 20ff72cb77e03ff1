"""The data part of a config: `data_loader.args`, the experts' widths, the teachers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from crosskd.config.model import aggregation_key, expert_temporal, model_dims
from crosskd.config.values import positive_int, require
from crosskd.data import layouts
from crosskd.data.errors import DataError
from crosskd.errors import ConfigError
from crosskd.data.spec import DEFAULT_ROOT_FEAT_FOLDER, DataSpec

#: options of the original that no published config turns on: refused, not ignored.
UNSUPPORTED_LOADER_OPTIONS = ("text_dropout", "restrict_train_captions", "caption_masks",
                              "trn_cat")


def _refuse_unsupported(args: Mapping[str, Any], modalities: tuple[str, ...]) -> None:
    for key in UNSUPPORTED_LOADER_OPTIONS:
        if args.get(key):
            raise DataError(f"config key data_loader.args.{key} = {args[key]!r} is not "
                            "supported (no published config uses it); remove it or set "
                            "it to 0/null")
    aggregation = args.get("feat_aggregation") or {}
    for name in modalities:
        if (aggregation.get(name) or {}).get("binarise"):
            raise DataError(f"config key {aggregation_key(name)}.binarise is not supported "
                            "(no published config uses it); set it to false")


def _teachers(config: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    """The teacher files (when distil_loss is on) and the folder they are under."""
    require(config, "distil_params", (dict, type(None)), default=None)
    base = require(config, "distil_params.base_path", (str, type(None)), default=None)
    if config.get("distil_loss") is not True:
        return (), base or "teachers/"
    names = require(config, "distil_params.teachers", list, default=[])
    if not all(isinstance(name, str) for name in names):
        raise DataError(f"config key distil_params.teachers must list file names, "
                        f"got {names!r:.60}")
    return tuple(names), base or "teachers/"


def data_spec(config: Mapping[str, Any]) -> DataSpec:
    """The typed data part of a (resolved) config; checks what can be checked without data."""
    require(config, "data_loader.args", dict)
    args = config["data_loader"]["args"]
    dataset = require(config, "data_loader.args.dataset_name", str)
    split = require(config, "data_loader.args.split_name", str)
    layout = layouts.get_layout(dataset)
    layouts.split_lists(layout, split)
    layouts.text_feat_paths(layout, require(config, "experts.text_feat", str), split)
    dims = model_dims(config)
    _refuse_unsupported(args, dims.modalities)
    variable = frozenset(m for m in dims.modalities
                         if expert_temporal(config, m).variable_length)
    max_tokens = dict(require(config, "data_loader.args.max_tokens", (dict, type(None)),
                              default=None) or {})
    for name in sorted(variable) + ["text"]:
        if name not in max_tokens:
            raise DataError(f"config key data_loader.args.max_tokens.{name} is missing")
        tokens = max_tokens[name]  # read directly: expert names may hold dots
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            raise ConfigError(f"config key data_loader.args.max_tokens.{name} must be an "
                              f"integer > 0, got {tokens!r:.60}")
    teachers, base = _teachers(config)
    return DataSpec(
        dataset_name=dataset,
        data_dir=Path(require(config, "data_loader.args.data_dir", str)),
        split_name=split,
        modalities=dims.modalities,
        aggregation={name: dict(entry) for name, entry in
                     (args.get("feat_aggregation") or {}).items() if name in dims.modalities},
        variable=variable,
        max_tokens=max_tokens,
        text_feat=require(config, "experts.text_feat", str),
        raw_input_dims=dims.raw_input_dims,
        text_dim=dims.text_dim,
        shared_dim=require(config, "experts.ce_shared_dim", (int, type(None)), default=None),
        root_feat_folder=require(config, "data_loader.args.root_feat_folder", str,
                                 default=DEFAULT_ROOT_FEAT_FOLDER),
        fuse_captions=bool(args.get("fuse_captions", False)),
        num_test_captions=(positive_int(config, "data_loader.args.num_test_captions")
                           if "num_test_captions" in args else 1),
        teachers=teachers,
        teacher_base_path=base,
    )
