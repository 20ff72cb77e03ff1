"""Training-curve plots (matplotlib, headless Agg backend)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


@dataclass(frozen=True)
class RunCurves:
    """What one run's plot shows: per-epoch validation R@1 and training loss, the epoch the
    monitor chose, and the final test numbers for the legend."""

    epochs: list[int]
    val_r1: list[float]
    loss_epochs: list[int]
    loss: list[float]
    best_epoch: int
    test_r1: float
    test_geometric_mean: float


def plot_runs(runs: Mapping[str, RunCurves], path: Path, title: str) -> Path:
    """Validation t2v R@1 (left) and training loss (right) per epoch, one colour per run,
    the best epoch marked on both; saved as a PNG at `path`."""
    figure, (recall, loss) = plt.subplots(1, 2, figsize=(11, 4.2))
    for (label, run), colour in zip(runs.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        legend = (f"{label}: test R@1 {run.test_r1:.1f}, "
                  f"GeoM {run.test_geometric_mean:.1f}")
        recall.plot(run.epochs, run.val_r1, marker="o", markersize=3, color=colour, label=legend)
        loss.plot(run.loss_epochs, run.loss, marker="o", markersize=3, color=colour, label=label)
        for axes in (recall, loss):
            axes.axvline(run.best_epoch, color=colour, linestyle=":", linewidth=1)
        if run.best_epoch in run.epochs:
            best = run.val_r1[run.epochs.index(run.best_epoch)]
            recall.plot([run.best_epoch], [best], marker="*", markersize=14, color=colour,
                        markeredgecolor="black", linestyle="none")
    recall.plot([], [], marker="*", markersize=10, color="grey", markeredgecolor="black",
                linestyle="none", label="best epoch (kept and tested)")
    recall.set(xlabel="epoch", ylabel="validation t2v R@1 (%)", title="validation R@1")
    loss.set(xlabel="epoch", ylabel="training loss (mean over the epoch)", yscale="log",
             title="training loss (log scale)")
    for axes in (recall, loss):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
