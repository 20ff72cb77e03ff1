"""Train / val / test membership of the captioned videos: a fixed split where one is known (the
caption file's split column, or the split a video already has in the dataset, so videos added
later never move the others), the rest drawn with a fixed seed (70 / 10 / 20 %), every split
holding at least one video. A segmented dataset's splits are drawn the same way, by video:
every segment of a video is in its video's split, so no video is in two."""

from __future__ import annotations

from typing import Container

import numpy as np

from crosskd.errors import UserError

SPLITS = ("train", "val", "test")
FRACTIONS = (0.7, 0.1, 0.2)


def assign_splits(video_ids: list[str], given: dict[str, str], seed: int) -> dict[str, list[str]]:
    """Split -> video ids (in `video_ids` order); `given` fixes a video's split."""
    if len(video_ids) < len(SPLITS):
        raise UserError(f"only {len(video_ids)} video(s) with captions; a dataset needs at "
                        "least 3 (one each for train, val and test)")
    free = [vid for vid in video_ids if vid not in given]
    order = np.random.default_rng(seed).permutation(len(free))
    cuts = np.cumsum([round(f * len(free)) for f in FRACTIONS[:-1]])
    drawn = {}
    for split, part in zip(SPLITS, np.split(order, cuts)):
        drawn.update({free[i]: split for i in part})
    membership = {**drawn, **{vid: given[vid] for vid in video_ids if vid in given}}
    out = {split: [vid for vid in video_ids if membership[vid] == split] for split in SPLITS}
    for split in SPLITS:
        if not out[split]:
            out[split].append(_donated(out, set(drawn), split))
    return out


def item_splits(video_splits: dict[str, list[str]], by_video: dict[str, list[str]],
                captioned: Container[str]) -> dict[str, list[str]]:
    """Each split's items: the `captioned` segments of its videos (`by_video`), in order."""
    return {split: [item for vid in ids for item in by_video[vid] if item in captioned]
            for split, ids in video_splits.items()}


def _donated(out: dict[str, list[str]], drawn: set[str], split: str) -> str:
    """A video taken from the largest split for the empty `split`: a drawn one where one can
    go, so that a fixed video moves only when nothing else can."""
    for movable in (drawn, None):
        donors = [name for name, ids in out.items() if len(ids) > 1
                  and (movable is None or any(vid in movable for vid in ids))]
        if donors:
            ids = out[max(donors, key=lambda name: len(out[name]))]
            position = max(i for i, vid in enumerate(ids) if movable is None or vid in movable)
            return ids.pop(position)
    raise UserError(f"no video left for the {split} split; give more videos")
