"""The epoch sampler owns every draw: order, batch cuts and caption choices."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.data.sampling import EpochSampler, ShardedSampler


@settings(max_examples=60, deadline=None)
@given(captions=st.lists(st.integers(1, 5), min_size=1, max_size=40),
       batch_size=st.integers(2, 9), seed=st.integers(0, 2**16), shuffle=st.booleans())
def test_an_epoch_visits_every_video_once_with_a_valid_caption(captions, batch_size, seed,
                                                              shuffle):
    sampler = EpochSampler(np.array(captions), batch_size)
    draws = list(sampler.epoch(np.random.default_rng(seed), shuffle))
    assert len(draws) == len(sampler)
    videos = np.concatenate([d.videos for d in draws])
    skipped = len(captions) - len(videos)
    assert len(set(videos.tolist())) == len(videos)
    # only a trailing batch of one video (behind at least one full batch) is left out
    assert skipped == (1 if len(captions) % batch_size == 1 and len(captions) > 1 else 0)
    assert all(len(d.videos) <= batch_size for d in draws)
    for draw in draws:
        assert ((0 <= draw.captions) & (draw.captions < np.array(captions)[draw.videos])).all()
    if not shuffle and not skipped:
        np.testing.assert_array_equal(videos, np.arange(len(captions)))


def test_batches_of_one_video_stop_after_the_first():
    """Batch norm cannot train on one video: as the original, only the first batch runs."""
    sampler = EpochSampler(np.ones(5, np.int64), 1)
    assert len(sampler) == 1 == len(list(sampler.epoch(np.random.default_rng(0))))


def test_draws_repeat_for_the_same_seed_and_follow_one_generator():
    sampler = EpochSampler(np.full(10, 4), 4)
    first = list(sampler.epoch(np.random.default_rng(7)))
    second = list(sampler.epoch(np.random.default_rng(7)))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.videos, b.videos)
        np.testing.assert_array_equal(a.captions, b.captions)
    # the permutation first, then one caption draw per batch, in batch order
    rng = np.random.default_rng(7)
    order = rng.permutation(10)
    np.testing.assert_array_equal(first[0].videos, order[:4])
    np.testing.assert_array_equal(first[0].captions, rng.integers(0, np.full(4, 4)))


def test_fused_captions_draw_nothing_but_the_order():
    sampler = EpochSampler(np.full(6, 3), 3, sample_captions=False)
    rng = np.random.default_rng(1)
    draws = list(sampler.epoch(rng))
    assert all((d.captions == 0).all() for d in draws)
    assert rng.bit_generator.state == _after_permutation(6, 1)


def _after_permutation(num: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rng.permutation(num)
    return rng.bit_generator.state


@settings(max_examples=60, deadline=None)
@given(captions=st.lists(st.integers(1, 5), min_size=1, max_size=40),
       per_rank=st.integers(1, 4), world_size=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_ranks_share_each_global_draw_and_see_every_video_once(captions, per_rank, world_size,
                                                              seed):
    sampler = EpochSampler(np.array(captions), per_rank * world_size)
    global_draws = list(sampler.epoch(np.random.default_rng(seed)))
    shards = [list(ShardedSampler(sampler, rank, world_size).epoch(np.random.default_rng(seed)))
              for rank in range(world_size)]
    assert all(len(rank_draws) == len(ShardedSampler(sampler, 0, world_size))
               for rank_draws in shards)
    for step, parts in enumerate(zip(*shards)):  # rank order rebuilds the global draw
        np.testing.assert_array_equal(np.concatenate([p.videos for p in parts]),
                                      global_draws[step].videos)
        np.testing.assert_array_equal(np.concatenate([p.captions for p in parts]),
                                      global_draws[step].captions)
        assert all(len(p.videos) >= 1 for p in parts)
    # only a trailing batch smaller than the process count is left out
    assert len(global_draws) - len(shards[0]) == (
        1 if global_draws and len(global_draws[-1].videos) < world_size else 0)
