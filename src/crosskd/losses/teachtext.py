"""TeachText distillation: regress the student's similarities onto the teachers'."""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

TeacherEmbeddings = Mapping[str, Mapping[str, torch.Tensor]]


@torch.no_grad()
def teacher_similarity(distil_text: TeacherEmbeddings,
                       distil_video: TeacherEmbeddings) -> torch.Tensor:
    """Mean over teachers of the sum over modalities of text @ video^T.

    `distil_text[teacher][modality]` is [B, C, d] (C captions per video, flattened
    video-major into B*C rows) and `distil_video[teacher][modality]` is [B, d], giving a
    [B*C, B] matrix laid out like the student's `cross_view_conf_matrix`.
    """
    if not distil_video:
        raise ValueError("no teacher embeddings given")
    per_teacher = []
    for teacher, videos in distil_video.items():
        if not videos:
            raise ValueError(f"teacher {teacher!r} has no modalities")
        texts = distil_text[teacher]
        per_teacher.append(sum(texts[mod].reshape(-1, texts[mod].shape[-1]) @ video.t()
                               for mod, video in videos.items()))
    return torch.stack(per_teacher).mean(0)


class TeacherDistillationLoss(nn.Module):
    """Smooth L1 (mean) between the student and teacher caption-video matrices."""

    def forward(self, sims: torch.Tensor, teacher_sims: torch.Tensor) -> torch.Tensor:
        """Loss of the student matrix `sims` against the fixed `teacher_sims`."""
        return F.smooth_l1_loss(sims, teacher_sims.detach(), reduction="mean")
