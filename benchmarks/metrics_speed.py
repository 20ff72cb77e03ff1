"""Time and peak memory of crosskd.metrics against a per-query Python loop.

Default size: the MSRVTT full-test matrix, 2,990 videos x 20 captions = 59,800 queries,
6 missing captions. Run: python3 benchmarks/metrics_speed.py [--videos N --captions C]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Callable

import numpy as np

from crosskd.metrics import DEFAULT_CHUNK_ELEMENTS, ranks_to_metrics, t2v_ranks, v2t_ranks
from _machine import cpu_description


def loop_t2v_ranks(sims: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """One query at a time: mean position of the ground truth among the sorted scores."""
    per_video = sims.shape[0] // sims.shape[1]
    ranks = np.empty(sims.shape[0])
    for row in range(sims.shape[0]):
        ordered = np.sort(-sims[row])
        ranks[row] = np.flatnonzero(ordered == -sims[row, row // per_video]).mean()
    return ranks[masks.reshape(-1).astype(bool)]


def loop_v2t_ranks(sims: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """One video at a time: best mean position among its real captions (missing: -1e8)."""
    num_queries, num_videos = sims.shape
    per_video = num_queries // num_videos
    keep = masks.reshape(-1).astype(bool)
    ranks = np.empty(num_videos)
    for video in range(num_videos):
        column = np.where(keep, sims[:, video], np.float32(-1e8))
        ordered = np.sort(-column)
        ranks[video] = min((np.flatnonzero(ordered == -column[row]).mean()
                            for row in range(video * per_video, (video + 1) * per_video)
                            if keep[row]), default=np.inf)
    return ranks


class PeakRss:
    """Peak resident memory above the starting level, sampled every 2 ms (Linux)."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._running = False
        self.peak = 0

    def _rss(self) -> int:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * self._page

    def _poll(self) -> None:
        while self._running:
            self.peak = max(self.peak, self._rss() - self._start)
            time.sleep(0.002)

    def __enter__(self) -> "PeakRss":
        self._start, self._running = self._rss(), True
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._running = False
        self._thread.join()


def measure(fn: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[float, int, tuple]:
    with PeakRss() as memory:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return seconds, memory.peak, result


def make_case(videos: int, captions: int, missing: int, seed: int):
    """Scores rounded to 1e-3 (so ties occur) with a boost on the matching video."""
    rng = np.random.default_rng(seed)
    sims = rng.standard_normal((videos * captions, videos), dtype=np.float32)
    rows = np.arange(videos * captions)
    sims[rows, rows // captions] += 2.5
    sims = np.round(sims, 3)
    masks = np.ones((videos, captions))
    masks.reshape(-1)[rng.choice(masks.size, size=missing, replace=False)] = 0
    return sims, masks


def main() -> None:
    print(f"CPU: {cpu_description()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2990)
    parser.add_argument("--captions", type=int, default=20)
    parser.add_argument("--missing", type=int, default=6)
    parser.add_argument("--chunk-elements", type=int, default=DEFAULT_CHUNK_ELEMENTS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    sims, masks = make_case(args.videos, args.captions, args.missing, args.seed)
    print(f"matrix {sims.shape[0]} x {sims.shape[1]} float32 ({sims.nbytes / 2**20:.0f} MiB), "
          f"{int(masks.size - masks.sum())} missing captions, chunk {args.chunk_elements} elements")
    ours = measure(lambda: (t2v_ranks(sims, masks, args.chunk_elements),
                            v2t_ranks(sims, masks, args.chunk_elements)))
    loop = measure(lambda: (loop_t2v_ranks(sims, masks), loop_v2t_ranks(sims, masks)))
    for mine, theirs in zip(ours[2], loop[2]):
        np.testing.assert_array_equal(mine, theirs)

    print(f"{'implementation':<28}{'t2v+v2t seconds':>16}{'peak extra MiB':>16}")
    for name, (seconds, peak, _) in (("crosskd.metrics (chunked)", ours),
                                     ("per-query Python loop", loop)):
        print(f"{name:<28}{seconds:>16.2f}{peak / 2**20:>16.1f}")
    print(f"speed-up: {loop[0] / ours[0]:.1f}x (identical ranks)")
    t2v, v2t = (ranks_to_metrics(ranks) for ranks in ours[2])
    print(f"t2v R1 {t2v['R1']:.2f} MdR {t2v['MedR']:g} | "
          f"v2t R1 {v2t['R1']:.2f} MdR {v2t['MedR']:g}")


if __name__ == "__main__":
    main()
