"""Caption features kept in several files, or keyed by other names, seen as one packed file.

The original reads the `openai` text features of ActivityNet and MSVD as a training file
updated by the split's own file (`dict.update`: a later file's entry wins), and MSVD's
with YouTube names for keys, mapped back through `dict_youtube_mapping.pkl`. Here a list
of videos takes its captions from the one file that holds all of them under that rule (no
copy); only a list whose videos come from several files gets a merged in-memory copy.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from crosskd.data.errors import DataError
from crosskd.data.store import PackedFile


def rekeyed(packed: PackedFile, names: Mapping[str, str], mapping_file: str) -> PackedFile:
    """`packed` with each key replaced by `names[key]` (YouTube name -> video id)."""
    try:
        keys = [names[key] for key in packed.keys]
    except KeyError as err:
        raise DataError(f"{packed.source}: entry {err.args[0]!r} is not a YouTube name of "
                        f"{mapping_file}; the two files come from different dataset "
                        "versions (re-extract the tarball)") from None
    return PackedFile(packed.source, packed.kind, packed.values, keys, packed.index,
                      packed.modalities)


def _owners(files: Sequence[PackedFile], video_ids: Sequence[str]) -> list[int]:
    """For each video, the last file holding it (the first one when none does: it names
    the video in its error)."""
    held = [set(packed.keys) for packed in files]
    owners = []
    for vid in video_ids:
        holding = [i for i, keys in enumerate(held) if vid in keys]
        owners.append(holding[-1] if holding else 0)
    return owners


def _merged(files: Sequence[PackedFile]) -> PackedFile:
    """One packed file holding every entry of `files`, a later file's entry winning."""
    chosen: dict[str, tuple[int, int]] = {}
    for f, packed in enumerate(files):
        chosen.update({key: (f, i) for i, key in enumerate(packed.keys)})
    row_offset = np.cumsum([0] + [len(p.values) for p in files])
    cap_offset = np.cumsum([0] + [len(p.index["cap_start"]) for p in files])
    first = np.array([cap_offset[f] + files[f].index["first"][i] for f, i in chosen.values()],
                     np.int64)
    num = np.array([files[f].index["num"][i] for f, i in chosen.values()], np.int64)
    index = {
        "first": first, "num": num,
        "cap_start": np.concatenate([p.index["cap_start"] + row_offset[f]
                                     for f, p in enumerate(files)]),
        "cap_rows": np.concatenate([p.index["cap_rows"] for p in files]),
        "cap_finite": np.concatenate([p.index["cap_finite"] for p in files]),
    }
    values = np.concatenate([p.values for p in files])
    return PackedFile(files[-1].source, "captions", values, list(chosen), index)


def captions_for(files: Sequence[PackedFile], video_ids: Sequence[str]) -> PackedFile:
    """The packed caption file to read `video_ids` from, merging `files` in order."""
    if len(files) == 1:
        return files[0]
    owners = set(_owners(files, video_ids))
    if len(owners) == 1:
        return files[owners.pop()]
    return _merged(files)
