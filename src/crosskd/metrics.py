"""Text-to-video and video-to-text retrieval metrics (R@K, median and mean rank).

The definitions follow the original evaluation exactly: ranks are 0-based, tied scores
share the average of their positions (so ranks can be fractional), R@1 counts only rank
0, MdR and MnR are reported 1-based. The computation is vectorised: ranks come from
counting, per query, the scores above and equal to the ground truth, in row chunks, so
that a 59,800 x 2,990 matrix needs only a few MB beyond the matrix itself. NumPy, single
threaded: it stays fast when other work shares the CPU cores.

Video-level metrics (a segmented dataset, whose items are segments of longer videos) rank
source videos instead: a video's score for a caption is its best segment's score, a
caption's right video is its segment's video, and a video's captions (for v2t) are those of
all its segments. Each row chunk's items are grouped by video and reduced to a maximum, so
memory stays bounded by the chunk as well.
"""

from __future__ import annotations

import math
from typing import Iterable, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]

# The original gives a missing caption this distance (i.e. this negated similarity).
MISSING_DISTANCE = 1e8
DEFAULT_CHUNK_ELEMENTS = 1 << 20
RECALL_LEVELS = (1, 5, 10, 50)


def _as_numpy(array: ArrayLike) -> np.ndarray:
    """A numpy view of an array or (CPU-copied) tensor; bfloat16 widened to float32."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        return (array.float() if array.dtype == torch.bfloat16 else array).numpy()
    return np.asarray(array)


def _as_matrix(sims: ArrayLike) -> np.ndarray:
    """`sims` as a float32/float64 numpy matrix (no copy for float arrays and CPU tensors)."""
    matrix = _as_numpy(sims)
    if matrix.ndim != 2:
        raise ValueError(f"expected a similarity matrix, got shape {matrix.shape}")
    if matrix.dtype not in (np.float32, np.float64):
        matrix = matrix.astype(np.float64)
    return matrix


def _queries_per_video(num_queries: int, num_videos: int) -> int:
    """Rows are video-major blocks of equal size; reject anything else."""
    if num_videos == 0 or num_queries % num_videos:
        raise ValueError(f"sims has {num_queries} rows, not a multiple of its "
                         f"{num_videos} video columns")
    return num_queries // num_videos


def _valid_queries(query_masks: ArrayLike | None, num_queries: int) -> np.ndarray:
    """Boolean flags of the real (non-missing) queries, in row order."""
    if query_masks is None:
        return np.ones(num_queries, dtype=bool)
    valid = _as_numpy(query_masks).reshape(-1).astype(bool)
    if valid.size != num_queries:
        raise ValueError(f"query_masks has {valid.size} entries for {num_queries} queries")
    return valid


def _own_items(shape: tuple[int, int]) -> np.ndarray:
    """The item (column) each row's caption belongs to: rows are video-major blocks."""
    num_queries, num_videos = shape
    return np.arange(num_queries) // _queries_per_video(num_queries, num_videos)


def _checked(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Ground-truth scores, refused when a real query's is NaN."""
    if np.isnan(scores[valid]).any():
        raise ValueError("sims holds NaN at a ground-truth entry; the model produced NaN scores")
    return scores


def _tie_averaged(greater: np.ndarray, equal: np.ndarray) -> np.ndarray:
    """0-based rank with ties averaged: the mean of positions greater .. greater+equal-1."""
    return greater + (equal - 1) / 2


def _chunk_starts(num_rows: int, num_videos: int, chunk_elements: int) -> tuple[range, int]:
    """Row offsets and rows per chunk so one chunk holds about `chunk_elements` scores."""
    step = max(1, chunk_elements // max(1, num_videos))
    return range(0, num_rows, step), step


Blocks = Iterable[tuple[slice, np.ndarray]]


def _row_blocks(matrix: np.ndarray, chunk_elements: int) -> Blocks:
    """(rows, view of those rows) of `matrix`, about `chunk_elements` scores at a time."""
    starts, step = _chunk_starts(*matrix.shape, chunk_elements)
    for start in starts:
        rows = slice(start, start + step)
        yield rows, matrix[rows]


def _target_ranks(blocks: Blocks, targets: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per real query, the 0-based (tie-averaged) rank of its `targets` column in its row."""
    greater = np.empty(len(targets), dtype=np.int64)
    equal = np.empty_like(greater)
    for rows, block in blocks:
        gt = _checked(block[np.arange(len(block)), targets[rows]], valid[rows])[:, None]
        greater[rows] = np.count_nonzero(block > gt, axis=1)
        equal[rows] = np.count_nonzero(block == gt, axis=1)
    return _tie_averaged(greater, equal)[valid]


def _best_caption_ranks(blocks: Blocks, gt: np.ndarray, targets: np.ndarray,
                        valid: np.ndarray, num_videos: int) -> np.ndarray:
    """Per column, the best rank among its own (`targets`) real captions of the column's
    scores; a missing caption scores -1e8 against every column, as in the original. The best
    rank is that of the highest-scoring own caption, because the tie-averaged rank grows
    strictly with falling score. A column without real captions gets rank inf."""
    missing = gt.dtype.type(-MISSING_DISTANCE)
    candidate = valid & (gt != missing)
    best = np.full(num_videos, -np.inf, dtype=gt.dtype)
    np.maximum.at(best, targets[candidate], gt[candidate])
    greater = np.zeros(num_videos, dtype=np.int64)
    equal = np.zeros_like(greater)
    for rows, block in blocks:
        block = np.where(valid[rows, None], block, missing)
        greater += np.count_nonzero(block > best, axis=0)
        equal += np.count_nonzero(block == best, axis=0)
    ranks = _tie_averaged(greater, equal)
    ranks[np.bincount(targets[candidate], minlength=num_videos) == 0] = np.inf
    return ranks


def t2v_ranks(sims: ArrayLike, query_masks: ArrayLike | None = None,
              chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> np.ndarray:
    """0-based (tie-averaged) rank of the right video for every real caption query."""
    matrix = _as_matrix(sims)
    valid = _valid_queries(query_masks, matrix.shape[0])
    return _target_ranks(_row_blocks(matrix, chunk_elements), _own_items(matrix.shape), valid)


def v2t_ranks(sims: ArrayLike, query_masks: ArrayLike | None = None,
              chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> np.ndarray:
    """Per video, the best 0-based (tie-averaged) rank among its real captions (a video
    without real captions: inf)."""
    matrix = _as_matrix(sims)
    valid = _valid_queries(query_masks, matrix.shape[0])
    targets = _own_items(matrix.shape)
    gt = _checked(matrix[np.arange(len(targets)), targets], valid)
    return _best_caption_ranks(_row_blocks(matrix, chunk_elements), gt, targets, valid,
                               matrix.shape[1])


def ranks_to_metrics(ranks: np.ndarray, num_queries: int | None = None) -> dict[str, float]:
    """R@1/5/10/50 in percent, 1-based MedR and MeanR, and the geometric mean of R@1-5-10."""
    num_queries = len(ranks) if num_queries is None else num_queries
    if num_queries == 0:
        raise ValueError("no valid queries to evaluate: every query is masked")
    metrics = {"R1": 100 * float(np.sum(ranks == 0)) / num_queries}
    for level in RECALL_LEVELS[1:]:
        metrics[f"R{level}"] = 100 * float(np.sum(ranks < level)) / num_queries
    metrics["MedR"] = float(np.median(ranks) + 1)
    metrics["MeanR"] = float(np.mean(ranks) + 1)
    metrics["geometric_mean_R1-R5-R10"] = _geometric_mean(
        [metrics["R1"], metrics["R5"], metrics["R10"]])
    return metrics


def _geometric_mean(values: list[float]) -> float:
    """exp(mean(log)), 0 when any value is 0.

    Uses the C library's log/exp, which matched the original's numbers to the last bit;
    numpy's SIMD log/exp can differ by one ulp depending on the CPU.
    """
    if min(values) == 0:
        return 0.0
    return math.exp(sum(math.log(value) for value in values) / len(values))


def t2v_metrics(sims: ArrayLike, query_masks: ArrayLike | None = None,
                chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> dict[str, float]:
    """Text-to-video metrics of a [videos*captions, videos] matrix with video-major rows."""
    return ranks_to_metrics(t2v_ranks(sims, query_masks, chunk_elements))


def v2t_metrics(sims: ArrayLike, query_masks: ArrayLike | None = None,
                chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> dict[str, float]:
    """Video-to-text metrics (best real caption per video) of the same matrix."""
    return ranks_to_metrics(v2t_ranks(sims, query_masks, chunk_elements))


def _video_blocks(matrix: np.ndarray, item_video: np.ndarray, chunk_elements: int) -> Blocks:
    """(rows, `[rows, videos]` scores) where a video scores its best item's score: the items
    of each video side by side (a chunk's copy, unless they already are), then the maximum
    of each video's run."""
    counts = np.bincount(item_video)
    in_order = bool((np.diff(item_video) >= 0).all())
    columns = slice(None) if in_order else np.argsort(item_video, kind="stable")
    runs = np.concatenate(([0], np.cumsum(counts)[:-1]))
    starts, step = _chunk_starts(*matrix.shape, chunk_elements)
    for start in starts:
        rows = slice(start, start + step)
        yield rows, np.maximum.reduceat(matrix[rows, columns], runs, axis=1)


def _item_videos(item_video: ArrayLike, num_items: int) -> np.ndarray:
    """`item_video` checked: one video position per item, every video 0..V-1 owning an item."""
    videos = _as_numpy(item_video)
    if videos.shape != (num_items,) or not np.issubdtype(videos.dtype, np.integer):
        raise ValueError(f"item_video must hold one integer video position for each of the "
                         f"{num_items} items, got shape {videos.shape} of {videos.dtype}")
    if num_items and (videos.min() < 0 or not np.bincount(videos).all()):
        raise ValueError("item_video must number its videos 0..V-1, each owning an item")
    return videos.astype(np.int64, copy=False)


def video_t2v_ranks(sims: ArrayLike, item_video: ArrayLike, query_masks: ArrayLike | None = None,
                    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> np.ndarray:
    """0-based (tie-averaged) rank of the right source video for every real caption query of
    a matrix over segments (`item_video[i]`: the video of item i), where a video scores its
    best segment's score and a caption's right video is that of its own segment."""
    matrix = _as_matrix(sims)
    videos = _item_videos(item_video, matrix.shape[1])
    valid = _valid_queries(query_masks, matrix.shape[0])
    blocks = _video_blocks(matrix, videos, chunk_elements)
    return _target_ranks(blocks, videos[_own_items(matrix.shape)], valid)


def video_v2t_ranks(sims: ArrayLike, item_video: ArrayLike, query_masks: ArrayLike | None = None,
                    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> np.ndarray:
    """Per source video, the best 0-based (tie-averaged) rank among the real captions of its
    segments, every caption scored against the video by the video's best segment."""
    matrix = _as_matrix(sims)
    videos = _item_videos(item_video, matrix.shape[1])
    valid = _valid_queries(query_masks, matrix.shape[0])
    targets = videos[_own_items(matrix.shape)]
    gt = np.empty(len(targets), matrix.dtype)
    for rows, block in _video_blocks(matrix, videos, chunk_elements):
        gt[rows] = block[np.arange(len(block)), targets[rows]]
    return _best_caption_ranks(_video_blocks(matrix, videos, chunk_elements),
                               _checked(gt, valid), targets, valid, int(videos.max()) + 1)


def video_t2v_metrics(sims: ArrayLike, item_video: ArrayLike,
                      query_masks: ArrayLike | None = None,
                      chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> dict[str, float]:
    """Text-to-video metrics at the level of source videos (`video_t2v_ranks`)."""
    return ranks_to_metrics(video_t2v_ranks(sims, item_video, query_masks, chunk_elements))


def video_v2t_metrics(sims: ArrayLike, item_video: ArrayLike,
                      query_masks: ArrayLike | None = None,
                      chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> dict[str, float]:
    """Video-to-text metrics at the level of source videos (`video_v2t_ranks`)."""
    return ranks_to_metrics(video_v2t_ranks(sims, item_video, query_masks, chunk_elements))
