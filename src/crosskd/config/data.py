"""The data part of a config: `data_loader.args`, the experts' widths, the teachers.

`DataKeys` declares the keys it reads (crosskd.config.keys); the experts' keys are the model
part's (crosskd.config.model.ModelKeys).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Mapping

from crosskd.config.keys import setting
from crosskd.config.model import (ModelKeys, aggregation_key, dims_of, expert_aggregation,
                                  expert_temporal, model_keys)
from crosskd.config.objective import ObjectiveKeys
from crosskd.config.reading import read_field, read_part
from crosskd.config.values import sized, truthy
from crosskd.data import layouts
from crosskd.data.errors import DataError
from crosskd.errors import ConfigError
from crosskd.data.spec import DEFAULT_ROOT_FEAT_FOLDER, DataSpec
from crosskd.untrusted import terminal_safe


def _off(value: Any, key: str) -> Any:
    if value:
        raise DataError(f"config key {key} = {value!r} is not supported (no published config "
                        "uses it); remove it or set it to 0/null")
    return value


def unsupported() -> Any:
    """An option of the original that no published config turns on: refused, not ignored."""
    return setting(None, convert=_off)


@dataclass(frozen=True)
class LoaderArgs:
    """`data_loader.args`: the dataset, its split and the caption settings (the batch size
    is the trainer part's, the experts' entries the model part's)."""

    data_dir: str
    dataset_name: str
    split_name: str
    root_feat_folder: str = DEFAULT_ROOT_FEAT_FOLDER
    fuse_captions: bool = setting(False, json=bool | int, convert=truthy)
    num_test_captions: int = setting(1, convert=sized)
    max_tokens: dict[str, int] | None = None
    text_dropout: Any = unsupported()
    restrict_train_captions: Any = unsupported()
    caption_masks: Any = unsupported()
    trn_cat: Any = unsupported()


@dataclass(frozen=True)
class DistilParams:
    """`distil_params`: the TeachText teachers' files and their folder."""

    base_path: str | None = None
    teachers: list[str] = setting(default_factory=list)


@dataclass(frozen=True)
class DataLoader:
    """`data_loader`: the original's loader and its arguments."""

    args: LoaderArgs


@dataclass(frozen=True)
class DataKeys:
    """The keys the data part reads besides the experts'."""

    data_loader: DataLoader
    distil_params: DistilParams = setting(json=DistilParams | None)


def _refuse_binarised(keys: ModelKeys, modalities: tuple[str, ...]) -> None:
    for name in modalities:
        if expert_aggregation(keys, name).binarise:
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


def _file_names(names: list[Any]) -> tuple[str, ...]:
    """The teacher files `distil_params.teachers` lists, each below the teachers' folder."""
    if not all(isinstance(name, str) for name in names):
        raise DataError(f"config key distil_params.teachers must list file names, "
                        f"got {names!r:.60}")
    return tuple(below(name, "distil_params.teachers", "the teachers' folder")
                 for name in names)


def teacher_names(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The teacher files `distil_params.teachers` lists (whether or not `distil_loss` is on),
    each a file name below the teachers' folder."""
    return _file_names(read_field(DataKeys, "distil_params", config).teachers)


def _teacher_base(base: str | None) -> str:
    """distil_params.base_path: an absolute folder of its own (as data_dir is), or a folder
    inside the feature folder."""
    if not base:
        return "teachers/"
    if PurePosixPath(base).is_absolute():
        return base
    return below(base, "distil_params.base_path", "the feature folder", itself=True)


def _teachers(config: Mapping[str, Any], params: DistilParams
              ) -> tuple[tuple[str, ...], str]:
    """The teacher files (when distil_loss is on) and the folder they are under."""
    base = _teacher_base(params.base_path)
    if not read_field(ObjectiveKeys, "distil_loss", config):
        return (), base
    return _file_names(params.teachers), base


def _entries_as_written(config: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """The experts' feat_aggregation entries as the config writes them (checked by
    ModelKeys): their values name the experts' files, which crosskd.data.layouts reads."""
    return config["data_loader"]["args"].get("feat_aggregation") or {}


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


def _refuse_escaping_files(files: Iterator[tuple[str, str]]) -> None:
    """Every config-named feature file stays inside the feature folder: an expert's name and
    its fps/stride/... values make up its file name."""
    for key, path in files:
        if _escapes(path):
            raise ConfigError(f"config key {key} names the file {terminal_safe(path)!r:.160},"
                              " outside the feature folder; expert names and their "
                              "feat_aggregation values must not hold '..'")


def _max_tokens(loader: LoaderArgs, variable: frozenset[str]) -> dict[str, int]:
    """`max_tokens`, which names every token expert and the text, each at least 1."""
    max_tokens = dict(loader.max_tokens or {})
    for name in sorted(variable) + ["text"]:
        if name not in max_tokens:
            raise DataError(f"config key data_loader.args.max_tokens.{name} is missing")
        if max_tokens[name] < 1:
            raise ConfigError(f"config key data_loader.args.max_tokens.{name} must be an "
                              f"integer > 0, got {max_tokens[name]!r:.60}")
    return max_tokens


def data_spec(config: Mapping[str, Any]) -> DataSpec:
    """The typed data part of a (resolved) config; checks what can be checked without data."""
    keys = read_part(DataKeys, config)
    model = model_keys(config)
    loader = keys.data_loader.args
    split = loader.split_name
    layout = layouts.get_layout(loader.dataset_name)
    layouts.split_lists(layout, split)
    layouts.text_feat_paths(layout, model.experts.text_feat, split)
    dims = dims_of(model)
    _refuse_binarised(model, dims.modalities)
    variable = frozenset(m for m in dims.modalities if expert_temporal(model, m).variable_length)
    max_tokens = _max_tokens(loader, variable)
    teachers, base = _teachers(config, keys.distil_params)
    written = _entries_as_written(config)
    _refuse_escaping_files(_feature_files(layout, split, model.experts.text_feat,
                                          dims.modalities, written))
    root_feat_folder = below(loader.root_feat_folder, "data_loader.args.root_feat_folder",
                             "data_dir", itself=True)
    return DataSpec(
        dataset_name=loader.dataset_name,
        data_dir=Path(loader.data_dir),
        split_name=split,
        modalities=dims.modalities,
        aggregation={name: dict(entry) for name, entry in written.items()
                     if name in dims.modalities},
        variable=variable,
        max_tokens=max_tokens,
        text_feat=model.experts.text_feat,
        raw_input_dims=dims.raw_input_dims,
        text_dim=dims.text_dim,
        shared_dim=model.experts.ce_shared_dim,
        root_feat_folder=root_feat_folder,
        fuse_captions=loader.fuse_captions,
        num_test_captions=loader.num_test_captions,
        teachers=teachers,
        teacher_base_path=base,
    )
