"""QB-Norm inside an index: each video's log-normaliser and activation (a
`crosskd.qbnorm.QueryBank`), kept with the index, and why the normalised score is still an
inner product per availability pattern.

A query's normalised score of video v is exp(beta s - log Z_v) (crosskd.qbnorm). Inside a
pattern p, s = <q_p, x_v> / D_p with the query's vector q_p and denominator D_p
(crosskd.search.patterns), so its log is

    beta s - log Z_v = (beta / D_p) * (<q_p, x_v> - (D_p / beta) log Z_v),

a positive factor that is the same for every video of the pattern times the inner product of
[q_p, D_p / beta] with [x_v, -log Z_v]. One query vector cannot serve every pattern (D_p
differs between them, so the extra coordinate does), but each pattern's videos rank by that
augmented inner product, each pattern's best k are turned into beta s - log Z_v, and the
best k of the union are the normalised top k, as for raw scores. The stored coordinate is
u_v = gamma (c - log Z_v), with c the pattern's mean log Z and gamma scaling its largest
|u_v| to 1 (the size of one expert's block), so that it does not dominate an approximate
index's quantiser or graph; the query's coordinate is then D_p / (beta gamma). A constant
shift and a positive scale change no ranking within the pattern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crosskd.qbnorm import QueryBank

if TYPE_CHECKING:
    from crosskd.search.index_files import IndexFolder

FOLDER = "qbnorm"
LOG_NORMALISER = f"{FOLDER}/log_normaliser.npy"
ACTIVE = f"{FOLDER}/active.npy"


@dataclass(frozen=True)
class Column:
    """One pattern's extra coordinate u of its videos (module docstring), and its scale."""

    values: np.ndarray
    gamma: float

    @classmethod
    def of(cls, log_normaliser: np.ndarray) -> "Column":
        """The column of videos with these log Z_v."""
        log_z = np.asarray(log_normaliser, np.float64)
        centre = float(log_z.mean()) if len(log_z) else 0.0
        spread = float(np.abs(log_z - centre).max()) if len(log_z) else 0.0
        gamma = 1.0 / spread if math.isfinite(spread) and spread > 0 else 1.0
        return cls((gamma * (centre - log_z)).astype(np.float32), gamma)

    def query_weights(self, denominators: np.ndarray, beta: float) -> np.ndarray:
        """`[Q]` each query's coordinate on the column: D_p / (beta gamma)."""
        return (np.asarray(denominators, np.float64) / (beta * self.gamma)).astype(np.float32)


def log_scores(bank: QueryBank, scores: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """beta s - log Z_v (float64) of raw scores `s` of the videos at `positions`: the log of
    the normalised score, which ranks as it does."""
    return bank.beta * np.asarray(scores, np.float64) - bank.log_normaliser[positions]


def save_querybank(root: Path, bank: QueryBank) -> None:
    """Write the bank's per-video arrays (its beta and size go into the manifest)."""
    (root / FOLDER).mkdir()
    np.save(root / LOG_NORMALISER, np.asarray(bank.log_normaliser, np.float64))
    np.save(root / ACTIVE, np.asarray(bank.active, bool))


def load_querybank(folder: "IndexFolder", settings: tuple[float, int] | None, videos: int
                   ) -> QueryBank | None:
    """The bank the manifest's (beta, bank size) describe, its arrays checked (one value per
    video, log Z finite); None for an index without QB-Norm."""
    if settings is None:
        return None
    beta, size = settings
    log_z = folder.array(LOG_NORMALISER, "float64", (videos,))
    active = folder.array(ACTIVE, "bool", (videos,))
    return QueryBank(beta, folder.finite(LOG_NORMALISER, log_z), active, size)
