"""Training-curve plots (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def plot_validation_curves(curves: Mapping[str, Sequence[tuple[int, float]]], path: Path,
                           title: str) -> Path:
    """One line per run of (epoch, validation metric); saved as a PNG at `path`."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, points in curves.items():
        epochs, values = zip(*points)
        axes.plot(epochs, values, marker="o", markersize=3, label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("geometric mean of R@1, R@5, R@10 (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
