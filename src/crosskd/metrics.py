"""Text-to-video and video-to-text retrieval metrics (R@K, median and mean rank).

The definitions follow the original evaluation exactly: ranks are 0-based, tied scores
share the average of their positions (so ranks can be fractional), R@1 counts only rank
0, MdR and MnR are reported 1-based. The computation is vectorised: ranks come from
counting, per query, the scores above and equal to the ground truth, in row chunks, so
that a 59,800 x 2,990 matrix needs only a few MB beyond the matrix itself. NumPy, single
threaded: it stays fast when other work shares the CPU cores.
"""

from __future__ import annotations

import math
from typing import Union

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


def _ground_truth(matrix: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The score of every row against its own video; NaN at a real query is an error."""
    num_queries, num_videos = matrix.shape
    rows = np.arange(num_queries)
    scores = matrix[rows, rows // _queries_per_video(num_queries, num_videos)]
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


def t2v_ranks(sims: ArrayLike, query_masks: ArrayLike | None = None,
              chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> np.ndarray:
    """0-based (tie-averaged) rank of the right video for every real caption query."""
    matrix = _as_matrix(sims)
    valid = _valid_queries(query_masks, matrix.shape[0])
    gt = _ground_truth(matrix, valid)[:, None]
    greater = np.empty(matrix.shape[0], dtype=np.int64)
    equal = np.empty_like(greater)
    starts, step = _chunk_starts(*matrix.shape, chunk_elements)
    for start in starts:
        rows = slice(start, start + step)
        greater[rows] = np.count_nonzero(matrix[rows] > gt[rows], axis=1)
        equal[rows] = np.count_nonzero(matrix[rows] == gt[rows], axis=1)
    return _tie_averaged(greater, equal)[valid]


def v2t_ranks(sims: ArrayLike, query_masks: ArrayLike | None = None,
              chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> np.ndarray:
    """Per video, the best 0-based (tie-averaged) rank among its real captions.

    A missing caption scores -1e8 against every video, as in the original. The best rank
    is the rank of the highest-scoring real caption, because the tie-averaged rank grows
    strictly with falling score. A video without real captions gets rank inf.
    """
    matrix = _as_matrix(sims)
    num_queries, num_videos = matrix.shape
    valid = _valid_queries(query_masks, num_queries)
    gt = _ground_truth(matrix, valid)
    missing = matrix.dtype.type(-MISSING_DISTANCE)
    candidate = (valid & (gt != missing)).reshape(num_videos, -1)
    best = np.where(candidate.reshape(-1), gt, -np.inf).reshape(num_videos, -1).max(1)
    best = best.astype(matrix.dtype)
    greater = np.zeros(num_videos, dtype=np.int64)
    equal = np.zeros_like(greater)
    starts, step = _chunk_starts(num_queries, num_videos, chunk_elements)
    for start in starts:
        rows = slice(start, start + step)
        block = np.where(valid[rows, None], matrix[rows], missing)
        greater += np.count_nonzero(block > best, axis=0)
        equal += np.count_nonzero(block == best, axis=0)
    ranks = _tie_averaged(greater, equal)
    ranks[~candidate.any(1)] = np.inf
    return ranks


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
