"""The data part of a config: `data_loader.args`, the experts' widths, the teachers."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Mapping

from crosskd.config.model import aggregation_key, expert_temporal, model_dims
from crosskd.config.values import positive_int, require
from crosskd.data import layouts
from crosskd.data.errors import DataError
from crosskd.errors import ConfigError
from crosskd.data.spec import DEFAULT_ROOT_FEAT_FOLDER, DataSpec
from crosskd.untrusted import terminal_safe

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


def below(value: str, key: str, folder: str, itself: bool = False) -> str:
    """`value`, a path a config names below `folder` (data_dir, the feature folder, the
    teachers' folder), refused when it is absolute or climbs out with `..`: a downloaded
    config must not read or write files elsewhere. `itself`: the folder itself may be named."""
    if _escapes(value, itself):
        raise ConfigError(f"config key {key} = {terminal_safe(value)!r:.120}: must name a "
                          f"path inside {folder} (relative, without '..')")
    return value


def _escapes(value: str, itself: bool = False) -> bool:
    """Whether a relative path could name something outside its folder (or the folder
    itself, unless `itself`)."""
    path = PurePosixPath(value)
    return ("\x00" in value or path.is_absolute() or ".." in path.parts
            or not (path.parts or itself))


def teacher_names(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The teacher files `distil_params.teachers` lists (whether or not `distil_loss` is on),
    each a file name below the teachers' folder."""
    names = require(config, "distil_params.teachers", list, default=[])
    if not all(isinstance(name, str) for name in names):
        raise DataError(f"config key distil_params.teachers must list file names, "
                        f"got {names!r:.60}")
    return tuple(below(name, "distil_params.teachers", "the teachers' folder")
                 for name in names)


def _teacher_base(config: Mapping[str, Any]) -> str:
    """distil_params.base_path: an absolute folder of its own (as data_dir is), or a folder
    inside the feature folder."""
    base = require(config, "distil_params.base_path", (str, type(None)), default=None)
    if not base:
        return "teachers/"
    if PurePosixPath(base).is_absolute():
        return base
    return below(base, "distil_params.base_path", "the feature folder", itself=True)


def _teachers(config: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    """The teacher files (when distil_loss is on) and the folder they are under."""
    require(config, "distil_params", (dict, type(None)), default=None)
    base = _teacher_base(config)
    if config.get("distil_loss") is not True:
        return (), base
    return teacher_names(config), base


def _feature_files(layout: layouts.DatasetLayout, split: str, text_feat: str,
                   modalities: tuple[str, ...], aggregation: Mapping[str, Any]
                   ) -> Iterator[tuple[str, str]]:
    """(key, relative path) of each feature file the split reads whose name comes from the
    config; an expert without a file is left to the loader, which names what is missing."""
    for path in layouts.text_feat_paths(layout, text_feat, split):
        yield "experts.text_feat", path
    for name in modalities:
        try:
            paths = layouts.expert_paths(layout, name, aggregation, split)
        except (DataError, LookupError, AttributeError):
            continue
        for path in paths:
            yield aggregation_key(name), path


def _refuse_escaping_files(config: Mapping[str, Any], layout: layouts.DatasetLayout,
                           split: str, modalities: tuple[str, ...]) -> None:
    """Every config-named feature file stays inside the feature folder: an expert's name and
    its fps/stride/... values make up its file name."""
    aggregation = require(config, "data_loader.args.feat_aggregation", (dict, type(None)),
                          default=None) or {}
    text_feat = require(config, "experts.text_feat", str)
    for key, path in _feature_files(layout, split, text_feat, modalities, aggregation):
        if _escapes(path):
            raise ConfigError(f"config key {key} names the file {terminal_safe(path)!r:.160},"
                              " outside the feature folder; expert names and their "
                              "feat_aggregation values must not hold '..'")


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
    _refuse_escaping_files(config, layout, split, dims.modalities)
    root_feat_folder = below(require(config, "data_loader.args.root_feat_folder", str,
                                     default=DEFAULT_ROOT_FEAT_FOLDER),
                             "data_loader.args.root_feat_folder", "data_dir", itself=True)
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
        root_feat_folder=root_feat_folder,
        fuse_captions=bool(args.get("fuse_captions", False)),
        num_test_captions=(positive_int(config, "data_loader.args.num_test_captions")
                           if "num_test_captions" in args else 1),
        teachers=teachers,
        teacher_base_path=base,
    )
