"""Evaluation splits too small to mean much: a random ranking of a few videos already scores
high recall, and one query moves R@1 by whole points, so validation picks epochs by noise and
test figures say little. Extraction, training and the final test name such a split in one
line."""

from __future__ import annotations

import logging

#: fewer videos than this and a random ranking scores R@5 above 20 % (R@10 above 40 %).
MIN_EVAL_VIDEOS = 25
#: what to do, said when training or testing on such a split.
EVALUATION_REMEDY = ("evaluate on a split with more videos (own videos: extract more, or mark "
                     "more of them val/test in the captions file's split column)")


def chance_recall(videos: int, level: int) -> float:
    """R@`level` in percent of a random ranking of `videos` videos."""
    return 100.0 * min(level, videos) / videos


def small_split_warning(split: str, videos: int, remedy: str, unit: str = "video"
                        ) -> str | None:
    """One line naming a `split` of fewer than MIN_EVAL_VIDEOS items (`unit`s: videos, or a
    segmented dataset's segments), chance, and `remedy`; None when the split is big enough."""
    if videos >= MIN_EVAL_VIDEOS:
        return None
    return (f"the {split} split holds only {videos} {unit}(s): a random ranking scores "
            f"R@1 {chance_recall(videos, 1):.1f} %, R@5 {chance_recall(videos, 5):.1f} % "
            f"there, so its figures are mostly noise; {remedy} (at least "
            f"{MIN_EVAL_VIDEOS} {unit}s per evaluation split)")


def warn_if_small(log: logging.Logger, split: str, videos: int,
                  remedy: str = EVALUATION_REMEDY, unit: str = "video") -> None:
    """Log `small_split_warning` as a warning when there is one."""
    line = small_split_warning(split, videos, remedy, unit)
    if line:
        log.warning(line)
