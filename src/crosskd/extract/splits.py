"""Train / val / test membership: the caption file's splits where it gives them, the rest
drawn with a fixed seed (70 / 10 / 20 %, every split holding at least one video)."""

from __future__ import annotations

import numpy as np

from crosskd.errors import UserError

SPLITS = ("train", "val", "test")
FRACTIONS = (0.7, 0.1, 0.2)


def assign_splits(video_ids: list[str], given: dict[str, str], seed: int) -> dict[str, list[str]]:
    """Split -> video ids (in `video_ids` order)."""
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
            donor = max(out, key=lambda name: len(out[name]))
            if len(out[donor]) < 2:
                raise UserError(f"no video left for the {split} split; give more videos")
            out[split].append(out[donor].pop())
    return out
