"""An uncentred principal-axes projection: the approximate backends' candidate search runs
on fewer dimensions (`--project-to`) while inner products are kept."""

from __future__ import annotations

import numpy as np
import torch


class Projection:
    """An uncentred principal-axes projection `[r, width]`: inner products are kept for
    vectors in the span of the leading axes (centring would change them)."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = np.ascontiguousarray(matrix, np.float32)

    @classmethod
    def fit(cls, sample: np.ndarray, dim: int, seed: int = 0) -> "Projection":
        """The leading `dim` right singular vectors of `sample`, by a randomised range finder
        with two power iterations (a full SVD of 8,192 x 5,376 takes minutes on 2 cores)."""
        rng = np.random.default_rng(seed)
        sample = np.asarray(sample, np.float32)
        basis = sample @ rng.standard_normal((sample.shape[1], dim + 16), dtype=np.float32)
        for _ in range(2):
            basis, _ = np.linalg.qr(sample @ (sample.T @ basis))
        _, _, axes = np.linalg.svd(basis.T @ sample, full_matrices=False)
        return cls(axes[:dim])

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        # torch: numpy's float32 product with a transposed matrix is ~40x slower here
        projected = torch.from_numpy(np.ascontiguousarray(vectors, np.float32)) @ \
            torch.from_numpy(self.matrix).T
        return np.ascontiguousarray(projected.numpy())
