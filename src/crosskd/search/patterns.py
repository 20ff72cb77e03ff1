"""Availability patterns: why an ordinary inner-product index can serve the CE score exactly.

The model scores caption t against video v (crosskd.models.similarity.mixture_inner_products)
as

    s(t, v) = sum_e w[t,e] a[v,e] <t_e, v_e> / sum_e w[t,e] a[v,e].

The numerator is one inner product between the query vector q(t) = concat_e w[t,e] t_e and
the video vector x(v) = concat_e a[v,e] v_e; the denominator depends on the video only
through its availability row a[v]. Videos sharing a row (a "pattern") therefore rank by
<q, x> alone, and dividing a pattern's inner products by its one denominator gives the model's
score. The experts a pattern lacks contribute zero to every inner product, so a pattern's
vectors keep only the experts it has (at their true widths, without the model's padding).
Searching each pattern and merging the best k of each is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pattern:
    """One availability row and the videos (positions in the collection) that have it."""

    availability: tuple[float, ...]
    members: np.ndarray

    @property
    def experts(self) -> tuple[int, ...]:
        """Positions of the experts this pattern has (availability not 0)."""
        return tuple(i for i, a in enumerate(self.availability) if a != 0)

    def denominators(self, weights: np.ndarray) -> np.ndarray:
        """`[Q]` sums of each query's mixture weights over this pattern, sum_e w[q,e] a[e]."""
        return weights.astype(np.float32) @ np.asarray(self.availability, np.float32)


def find_patterns(availability: np.ndarray) -> list[Pattern]:
    """The distinct availability rows of `[V, E]`, most common first (ties in row order).

    A video without any available expert has no score (0 / 0 in the model) and is refused
    by the caller before this point.
    """
    rows, inverse, counts = np.unique(np.asarray(availability, np.float32), axis=0,
                                      return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    order = sorted(range(len(rows)), key=lambda g: (-counts[g], tuple(-rows[g])))
    return [Pattern(tuple(float(a) for a in rows[g]), np.flatnonzero(inverse == g))
            for g in order]


@dataclass(frozen=True)
class ExpertSlices:
    """Where each expert's block sits in a pattern's concatenated vectors."""

    experts: tuple[int, ...]
    offsets: tuple[int, ...]
    widths: tuple[int, ...]

    @classmethod
    def of(cls, experts: tuple[int, ...], dims: tuple[int, ...]) -> "ExpertSlices":
        widths = tuple(dims[e] for e in experts)
        offsets = tuple(int(o) for o in np.cumsum((0,) + widths[:-1]))
        return cls(experts, offsets, widths)

    @property
    def width(self) -> int:
        """Length of the concatenated vector."""
        return sum(self.widths)

    def concat(self, per_expert: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """`[N, width]`: `per_expert` `[N, E, D]` blocks times `scale` `[N, E]`, kept experts."""
        return np.concatenate([per_expert[:, e, :w] * scale[:, e, None]
                               for e, w in zip(self.experts, self.widths)], axis=1)

    def split(self, vectors: np.ndarray) -> list[np.ndarray]:
        """The per-expert blocks of `[N, width]` vectors, in `experts` order."""
        return [vectors[:, o:o + w] for o, w in zip(self.offsets, self.widths)]
