"""The one line that names an evaluation split too small to mean much."""

from __future__ import annotations

from crosskd.small_splits import MIN_EVAL_VIDEOS, chance_recall, small_split_warning


def test_chance_is_what_a_random_ranking_scores():
    assert chance_recall(13, 1) == 100 / 13 and chance_recall(13, 5) == 500 / 13
    assert chance_recall(3, 5) == 100.0


def test_a_small_split_is_named_with_its_chance_and_the_remedy():
    line = small_split_warning("test", 13, "add videos")
    assert line.startswith("the test split holds only 13 video(s)")
    assert "R@1 7.7 %, R@5 38.5 %" in line and "add videos" in line and "\n" not in line
    assert small_split_warning("test", MIN_EVAL_VIDEOS, "add videos") is None
    assert small_split_warning("test", MIN_EVAL_VIDEOS - 1, "add videos") is not None


def test_a_segmented_split_counts_segments():
    line = small_split_warning("val", 6, "add videos", unit="segment")
    assert line.startswith("the val split holds only 6 segment(s)")
    assert line.endswith("(at least 25 segments per evaluation split)")
