"""Which files a config needs: split lists, expert pickles, text features, captions, teachers.

Paths follow the published "high-quality experts" tarballs (each dataset's layout is part of
its spec in crosskd.datasets); visual expert paths are derived from the config's
`feat_aggregation` entry exactly as the original does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from crosskd.data.errors import DataError, MissingDataDirError, MissingFileError, SplitListError
from crosskd.data.spec import DataSpec
from crosskd.datasets import DATASETS, DatasetLayout

#: every dataset's layout by its `data_loader.args.dataset_name` (from crosskd.datasets).
LAYOUTS: dict[str, DatasetLayout] = {name: spec.layout for name, spec in DATASETS.items()}


def get_layout(dataset_name: str) -> DatasetLayout:
    """The layout of a dataset named as in `data_loader.args.dataset_name`."""
    try:
        return LAYOUTS[dataset_name]
    except KeyError:
        raise DataError(f"config key data_loader.args.dataset_name: unknown dataset "
                        f"{dataset_name!r}; use one of {', '.join(LAYOUTS)}") from None


def split_lists(layout: DatasetLayout, split_name: str) -> tuple[str, str]:
    """(train list, evaluation list) file names of a split."""
    try:
        return layout.splits[split_name]
    except KeyError:
        raise DataError(f"config key data_loader.args.split_name: {layout.name} has no split "
                        f"{split_name!r}; use one of {', '.join(layout.splits)}") from None


def visual_feat_paths(expert: str, aggregation: Mapping[str, Any]) -> tuple[str, ...]:
    """Relative paths of a visual expert's pickles, one per temporal statistic (concatenated)."""
    feat_type, model_name, _ = expert.split(".")
    base = f"aggregated_{feat_type.replace('-', '_')}"
    if feat_type not in {"ocr", "speech", "audio"}:
        fps, pixel_dim, stride = (aggregation.get(key) for key in ("fps", "pixel_dim", "stride"))
        base = f"{base}_{fps}fps_{pixel_dim}px_stride{stride}"
    for option in ("offset", "inner_stride", "num_segments"):
        if aggregation.get(option) is not None:
            base += f"_{option}{aggregation[option]}"
    suffix = "-logits" if aggregation.get("type") == "logits" else ""
    return tuple(f"{base}/{model_name}-{agg}{suffix}.pickle"
                 for agg in aggregation["temporal"].split("-"))


def custom_paths(layout: DatasetLayout, split: str | None = None) -> dict[str, tuple[str, ...]]:
    """The experts at fixed paths, with those of `split` (MSRVTT `miech`) replacing them."""
    return {**layout.custom_paths, **layout.split_custom_paths.get(split or "", {})}


def expert_paths(layout: DatasetLayout, expert: str,
                 feat_aggregation: Mapping[str, Mapping[str, Any]],
                 split: str | None = None) -> tuple[str, ...]:
    """Relative paths of the pickles holding one expert (several are concatenated)."""
    fixed = custom_paths(layout, split)
    if expert in fixed:
        return fixed[expert]
    if expert.count(".") != 2:
        only = [f"{name} (split {split_name!r} only)"
                for split_name, paths in layout.split_custom_paths.items()
                for name in paths if name == expert]
        hint = f"; {layout.name} has {only[0]}" if only else ""
        raise DataError(f"expert {expert!r}: {layout.name} has no file for it{hint}; known "
                        f"custom experts are {', '.join(fixed)}")
    try:
        aggregation = feat_aggregation[expert]
    except KeyError:
        raise DataError(f"config key data_loader.args.feat_aggregation.{expert} is missing: "
                        "it gives the fps/stride/temporal that name the expert's file") from None
    return visual_feat_paths(expert, aggregation)


def text_feat_paths(layout: DatasetLayout, text_feat: str, split: str) -> tuple[str, ...]:
    """Relative paths of the caption token features of a text model for one split.

    One file, except for a text model stored per split (`split_text_feats`), whose files
    are merged in order as the original does (the training file, then the split's own).
    """
    per_split = layout.split_text_feats.get(text_feat)
    if per_split is None:
        name = layout.text_feat_overrides.get(text_feat, f"{text_feat}.pkl")
        return (f"aggregated_text_feats/{name}",)
    if split not in per_split:
        raise DataError(f"config key experts.text_feat: the {text_feat!r} text features of "
                        f"{layout.name} exist for split(s) {', '.join(per_split)} only, not "
                        f"{split!r}; use another split_name or text_feat")
    return tuple(f"aggregated_text_feats/{name}" for name in per_split[split])


def data_root(spec: DataSpec) -> Path:
    """`<data_dir>/<root_feat_folder>` (relative data_dir resolves against the working dir)."""
    data_dir = spec.data_dir
    root = data_dir / spec.root_feat_folder
    if not data_dir.is_dir():
        raise MissingDataDirError(
            f"data directory {data_dir.resolve()} (config key data_loader.args.data_dir) does "
            "not exist: extract the dataset tarball there, point data_dir at it, or create a "
            "synthetic one with `crosskd synth`")
    if not root.is_dir():
        raise MissingDataDirError(
            f"feature folder {root} does not exist (data_dir + data_loader.args.root_feat_folder);"
            " the high-quality experts tarball extracts to high-quality/structured-symlinks")
    return root


def teacher_paths(spec: DataSpec, root: Path) -> list[Path]:
    """TeachText teacher pickles: under distil_params.base_path if usable, else root/teachers."""
    base_dir = Path(spec.teacher_base_path)
    if not base_dir.is_absolute():
        base_dir = root / base_dir
    elif not base_dir.is_dir():
        base_dir = root / "teachers"
    return [base_dir / name for name in spec.teachers]


def read_split_list(path: Path, layout: DatasetLayout, split_name: str) -> list[str]:
    """Video ids of a split list (DiDeMo entries keep only the part before the first dot).

    An empty list, or one naming a video twice, is refused: the original would count a
    repeated video twice (more queries and gallery videos than the published protocol) and
    silently report metrics over a different protocol.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise MissingFileError(
            f"split list {path} not found (needed by split {split_name!r} of {layout.name}); "
            f"{_missing_list_fix(layout)}") from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or "not UTF-8 text"
        raise SplitListError(f"cannot read split list {path} ({reason}); "
                             f"{_rewrite_fix(layout)}") from None
    rows = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    if layout.strip_list_suffix:
        rows = [(number, row.split(".")[0]) for number, row in rows]
    if not rows:
        raise SplitListError(f"split list {path} (split {split_name!r} of {layout.name}) names "
                             f"no video; {_rewrite_fix(layout)}")
    _refuse_duplicates(path, rows)
    return [row for _, row in rows]


def _rewrite_fix(layout: DatasetLayout) -> str:
    """How to get a damaged file of the dataset again."""
    if layout.made_by is None:
        return "extract it from the dataset tarball again"
    return f"run {layout.made_by} again"


def _missing_list_fix(layout: DatasetLayout) -> str:
    """Why a split list may be missing and what to do: an own collection extracted without
    captions has none, as it cannot be trained or tested on (only indexed)."""
    if layout.made_by is None:
        return "the dataset tarball contains it at the top of the feature folder"
    return (f"{layout.made_by} writes split lists only for videos with captions, so a "
            "collection without captions cannot be trained or tested on: index it with a "
            "model trained on captioned videos (crosskd index --checkpoint RUN --data DIR)")


def _refuse_duplicates(path: Path, rows: list[tuple[int, str]]) -> None:
    """Raise naming the first repeated video id and the lines it is on."""
    lines: dict[str, list[int]] = {}
    for number, row in rows:
        lines.setdefault(row, []).append(number)
    repeated = {row: numbers for row, numbers in lines.items() if len(numbers) > 1}
    if repeated:
        row, numbers = next(iter(repeated.items()))
        others = f" ({len(repeated) - 1} more id(s) repeated)" if len(repeated) > 1 else ""
        raise SplitListError(
            f"split list {path}: video id {row!r} appears {len(numbers)} times (lines "
            f"{', '.join(map(str, numbers))}){others}; a repeated video would be counted twice "
            "and the metrics would not follow the published protocol - remove the repeated "
            "lines or extract the list from the dataset tarball again")


def require_file(path: Path, what: str, layout: DatasetLayout) -> Path:
    """Return `path`, or raise naming what it holds and where the tarball keeps it."""
    if not path.is_file():
        source = (f"the {layout.name} high-quality experts tarball contains it"
                  if layout.made_by is None else f"{layout.made_by} writes it: run it again")
        raise MissingFileError(f"missing {what}: expected {path}; {source}")
    return path
