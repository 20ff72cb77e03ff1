"""The features of one list of videos, gathered from packed files and checked against the config.

Fixed-size experts become contiguous `[V, D]` arrays (zeros where missing); variable-length
experts, captions and teacher embeddings stay ragged in the memory-mapped packed files and are
addressed by per-video row indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from crosskd.data.errors import (DataError, FeatureDimError, NoCaptionsError,
                                 NonFiniteFeatureError)
from crosskd.data.store import PackedFile


@dataclass
class RaggedExpert:
    """A variable-length expert: rows `values[start[v] : start[v] + rows[v]]` per video."""

    values: np.ndarray
    start: np.ndarray
    rows: np.ndarray


@dataclass
class Captions:
    """Caption token rows: video v owns captions `first[v] .. first[v] + num[v] - 1`."""

    values: np.ndarray
    first: np.ndarray
    num: np.ndarray
    cap_start: np.ndarray
    cap_rows: np.ndarray


@dataclass
class Teacher:
    """One TeachText teacher: per modality, a video row and a first caption row per video."""

    values: np.ndarray
    vid_row: dict[str, np.ndarray]
    text_row: dict[str, np.ndarray]
    text_num: dict[str, np.ndarray]


@dataclass
class SplitFeatures:
    """Everything the batches of one video list are cut from."""

    video_ids: list[str]
    fixed: dict[str, np.ndarray]
    variable: dict[str, RaggedExpert]
    avail: dict[str, np.ndarray]
    captions: Captions
    teachers: list[Teacher] = field(default_factory=list)


def _check_width(found: int, expected: int | None, expert: str, sources: str) -> None:
    if expected is not None and found != expected:
        raise FeatureDimError(
            f"expert {expert}: {sources} holds {found}-d features but the config expects "
            f"{expected}-d (data_loader.args.feat_aggregation.{expert}.feat_dims, experts.face_dim"
            " or the fixed token width); fix the config or use the matching feature file")


def _check_finite(bad: np.ndarray, video_ids: Sequence[str], what: str) -> None:
    if bad.any():
        examples = [video_ids[i] for i in np.flatnonzero(bad)[:3]]
        raise NonFiniteFeatureError(
            f"{what}: NaN/inf values inside available features of {int(bad.sum())} video(s), "
            f"e.g. {examples}; store a missing expert as a single float NaN, or re-extract the "
            "file")


def _fixed_expert(name: str, files: Sequence[PackedFile], video_ids: Sequence[str],
                  expected: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the vectors of every file of an expert; zeros where any part is missing."""
    parts, avail = [], np.ones(len(video_ids), bool)
    for packed in files:
        pos = packed.positions(video_ids, f"expert {name}")
        present = packed.index["avail"][pos]
        _check_finite(present & ~packed.index["finite"][pos], video_ids,
                      f"expert {name} ({packed.source})")
        if (packed.index["rows"][pos][present] != 1).any():
            raise FeatureDimError(f"expert {name}: {packed.source} holds sequences, but its "
                                  "feat_aggregation temporal says one vector per video")
        avail &= present
        if not len(packed.values):  # no video has it (an expert missing everywhere)
            return np.zeros((len(video_ids), expected or 0), packed.values.dtype), avail
        parts.append(packed.values[packed.index["start"][pos]])
    values = np.concatenate(parts, axis=1) if len(parts) > 1 else np.array(parts[0])
    _check_width(values.shape[1], expected, name, ", ".join(str(p.source) for p in files))
    values[~avail] = 0
    return values, avail


def _variable_expert(name: str, packed: PackedFile, video_ids: Sequence[str],
                     expected: int | None) -> tuple[RaggedExpert, np.ndarray]:
    pos = packed.positions(video_ids, f"expert {name}")
    avail = packed.index["avail"][pos]
    _check_finite(avail & ~packed.index["finite"][pos], video_ids,
                  f"expert {name} ({packed.source})")
    values = packed.values
    if len(values):
        _check_width(packed.width, expected, name, str(packed.source))
    elif expected is not None:  # no video has it (a silent collection's sound): zero tokens
        values = np.zeros((0, expected), values.dtype)
    rows = np.where(avail, packed.index["rows"][pos], 0)
    return RaggedExpert(values, packed.index["start"][pos], rows), avail


def _captions(packed: PackedFile, video_ids: Sequence[str], text_dim: int | None,
              optional: bool = False) -> Captions:
    pos = packed.positions(video_ids, "text feature")
    first, num = packed.index["first"][pos], packed.index["num"][pos]
    if (num == 0).any() and not optional:
        empty = [video_ids[i] for i in np.flatnonzero(num == 0)[:3]]
        raise NoCaptionsError(f"text features {packed.source}: {int((num == 0).sum())} video(s) "
                              f"of the split have no caption, e.g. {empty}; remove them from the "
                              "split list or re-extract the text features")
    owner = np.repeat(np.arange(len(pos)), num)
    cap_ids = np.repeat(first - np.cumsum(num) + num, num) + np.arange(int(num.sum()))
    bad = np.zeros(len(pos), bool)
    bad[owner[~packed.index["cap_finite"][cap_ids]]] = True
    _check_finite(bad, video_ids, f"text features ({packed.source})")
    values = packed.values
    if len(values) or not optional:
        _check_width(packed.width, text_dim, "text", str(packed.source))
    elif text_dim is not None:  # no video has a caption (a collection extracted without any)
        values = np.zeros((0, text_dim), values.dtype)
    return Captions(values, first, num, packed.index["cap_start"], packed.index["cap_rows"])


def _teacher(packed: PackedFile, video_ids: Sequence[str], width: int | None) -> Teacher:
    pos = packed.positions(video_ids, "teacher")
    if width is not None and packed.width != width:
        raise FeatureDimError(f"teacher {packed.source}: embeddings are {packed.width}-d but "
                              f"experts.ce_shared_dim is {width}; use the teachers made for "
                              "this config")
    names = packed.modalities
    return Teacher(packed.values,
                   {m: packed.index[f"vid_row_{i}"][pos] for i, m in enumerate(names)},
                   {m: packed.index[f"text_row_{i}"][pos] for i, m in enumerate(names)},
                   {m: packed.index[f"text_num_{i}"][pos] for i, m in enumerate(names)})


def gather_split(video_ids: Sequence[str], expert_files: Mapping[str, Sequence[PackedFile]],
                 variable: set[str], text: PackedFile, teachers: Sequence[PackedFile],
                 raw_dims: Mapping[str, int], text_dim: int | None,
                 teacher_dim: int | None, captions_optional: bool = False) -> SplitFeatures:
    """Gather and validate the features of `video_ids` (in that order); a video without
    captions is refused unless `captions_optional` (a collection to index, not a split)."""
    video_ids = list(video_ids)
    if not video_ids:
        raise DataError("a split list is empty")
    fixed, ragged, avail = {}, {}, {}
    for name, files in expert_files.items():
        if name in variable:
            if len(files) != 1:
                raise DataError(f"expert {name}: variable-length experts come from one file")
            ragged[name], avail[name] = _variable_expert(name, files[0], video_ids,
                                                         raw_dims.get(name))
        else:
            fixed[name], avail[name] = _fixed_expert(name, files, video_ids, raw_dims.get(name))
    return SplitFeatures(video_ids, fixed, ragged, avail,
                         _captions(text, video_ids, text_dim, captions_optional),
                         [_teacher(t, video_ids, teacher_dim) for t in teachers])
