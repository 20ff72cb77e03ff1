"""Querybank normalisation (QB-Norm, Bogolin et al., CVPR 2022) by Dynamic Inverted Softmax.

Some videos ("hubs") score high against many queries and crowd the top of rankings they do
not belong to. QB-Norm measures this with a bank of queries from training: a query's score
s(q, v) becomes exp(beta s(q, v)) / Z_v with Z_v = sum over the bank's queries b of
exp(beta s(b, v)), so a video close to many bank queries is discounted. The dynamic variant
applies this only to a query whose best video lies in the activation set, the videos that
are the best match (top k = 1) of at least one bank query; every other query keeps its raw
scores. Ranking is within each query's row, so rows may keep different scales.

The bank is folded in a chunk of score rows at a time (`BankAccumulator`), keeping per video
log Z_v as a running log-sum-exp (safe for any beta) and whether it is active: memory grows
with the videos, not with the bank. NumPy only; search and evaluation share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: the inverse temperature of the official code and of the paper's CE/TeachText results.
DEFAULT_BETA = 20.0
#: a video is active when it is among the top K videos of some bank query (official: 1).
ACTIVATION_K = 1
#: score rows normalised at once; bounds the float64 temporaries (rows x videos x 8 bytes).
NORMALISE_CHUNK_ELEMENTS = 1 << 22


#: the largest beta taken: scores lie in [-1, 1], so beta s - log Z_v <= 2 beta, and exp of
#: it stays a finite float64 (a reported normalised score, the JSON it goes into)
MAX_BETA = 300.0


def check_beta(value: float) -> float:
    """`value` as a beta (a number > 0 and at most MAX_BETA), else a ValueError saying what a
    beta must be."""
    beta = float(value)
    if not (math.isfinite(beta) and 0 < beta <= MAX_BETA):
        raise ValueError(f"beta must be a number > 0 and at most {MAX_BETA:g} (the official "
                         f"value is {DEFAULT_BETA:g}), got {value!r}")
    return beta


@dataclass(frozen=True)
class QueryBank:
    """What the bank says of each video: log Z_v, and whether the video is active."""

    beta: float
    log_normaliser: np.ndarray
    active: np.ndarray
    size: int

    def normalise_in_place(self, sims: np.ndarray) -> np.ndarray:
        """Replace each row of `sims` (queries x videos) whose best video is active by
        exp(beta s - log Z); return which rows were replaced. In place: the matrix of a
        large split is not copied."""
        replaced = np.zeros(len(sims), bool)
        step = max(1, NORMALISE_CHUNK_ELEMENTS // max(1, sims.shape[1]))
        for start in range(0, len(sims), step):
            block = sims[start:start + step]
            chosen = self.active[block.argmax(axis=1)]
            scaled = self.beta * block[chosen].astype(np.float64) - self.log_normaliser
            block[chosen] = np.exp(scaled)
            replaced[start:start + step] = chosen
        return replaced

    def summary(self) -> dict[str, float | int]:
        """The settings and the bank's size, as the metrics JSON reports them."""
        return {"beta": self.beta, "k": ACTIVATION_K, "bank_size": self.size,
                "active_videos": int(self.active.sum())}


class BankAccumulator:
    """Folds the bank's score rows (bank queries x videos) into a `QueryBank`."""

    def __init__(self, num_videos: int, beta: float) -> None:
        self.beta = check_beta(beta)
        self._max = np.full(num_videos, -np.inf)
        self._sum = np.zeros(num_videos)
        self._active = np.zeros(num_videos, bool)
        self._size = 0

    def add(self, scores: np.ndarray) -> None:
        """Fold in the rows of real bank queries (an empty caption slot must not be passed)."""
        if not len(scores):
            return
        scaled = self.beta * np.asarray(scores, np.float64)
        new_max = np.maximum(self._max, scaled.max(axis=0))
        self._sum = (self._sum * np.exp(self._max - new_max)
                     + np.exp(scaled - new_max).sum(axis=0))
        self._max = new_max
        self._active[np.asarray(scores).argmax(axis=1)] = True
        self._size += len(scores)

    def result(self) -> QueryBank:
        """The bank's normalisers and activation set; a ValueError for an empty bank."""
        if not self._size:
            raise ValueError("the query bank is empty: QB-Norm needs at least one bank query")
        return QueryBank(self.beta, self._max + np.log(self._sum), self._active.copy(),
                         self._size)
