"""CrossKD "within to between" distillation: within-modality similarities teach the
cross-modal ones, as KL between row-wise softmax distributions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIDES = ("caption", "video")


def rank_distillation(student: torch.Tensor, target: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """KL(softmax(target/t) || softmax(student/t)) per row, summed and divided by the rows."""
    return F.kl_div(F.log_softmax(student / temperature, dim=1),
                    F.softmax(target / temperature, dim=1), reduction="batchmean")


class WithinBetweenLoss(nn.Module):
    """Distil a within-modality matrix into the caption-video matrix.

    side="caption": rows of the [B, B] caption-video matrix follow the caption-caption
    matrix; side="video": rows of its transpose follow the video-video matrix.
    Gradients reach both matrices, as in the original, unless `detach_target`.
    """

    def __init__(self, temperature: float, side: str = "caption",
                 detach_target: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        self.temperature = temperature
        self.side = side
        self.detach_target = detach_target

    def forward(self, cross_sims: torch.Tensor, within_sims: torch.Tensor) -> torch.Tensor:
        """Loss of the caption-video matrix against the caption-caption or video-video one."""
        student = cross_sims if self.side == "caption" else cross_sims.t()
        target = within_sims.detach() if self.detach_target else within_sims
        return rank_distillation(student, target, self.temperature)
