"""TeachText teacher matrix and its Smooth L1 distillation term."""

from __future__ import annotations

import pytest
import torch

from crosskd.losses import TeacherDistillationLoss, teacher_similarity


def _teachers(batch: int, captions: int, dim: int = 4):
    """Two teachers with different modality sets."""
    gen = torch.Generator().manual_seed(0)
    layout = {"t0": ["audio", "scene"], "t1": ["scene"]}
    text = {t: {m: torch.randn(batch, captions, dim, generator=gen) for m in mods}
            for t, mods in layout.items()}
    video = {t: {m: torch.randn(batch, dim, generator=gen) for m in mods}
             for t, mods in layout.items()}
    return text, video


def test_teacher_matrix_is_the_mean_over_teachers_of_summed_modalities():
    text, video = _teachers(batch=3, captions=2)
    expected = torch.zeros(6, 3)
    for teacher in text:
        for mod in text[teacher]:
            for row in range(6):
                for col in range(3):
                    caption = text[teacher][mod][row // 2, row % 2]
                    expected[row, col] += caption @ video[teacher][mod][col] / 2
    torch.testing.assert_close(teacher_similarity(text, video), expected)


def test_teacher_matrix_carries_no_gradient():
    text, video = _teachers(batch=2, captions=1)
    video["t0"]["audio"].requires_grad_(True)
    assert not teacher_similarity(text, video).requires_grad


def test_teacher_matrix_needs_a_teacher():
    with pytest.raises(ValueError, match="no teacher"):
        teacher_similarity({}, {})


def test_smooth_l1_is_quadratic_then_linear_and_only_trains_the_student():
    student = torch.tensor([[0.5, 3.0]], requires_grad=True)
    teacher = torch.zeros(1, 2, requires_grad=True)
    loss = TeacherDistillationLoss()(student, teacher)
    assert loss.item() == pytest.approx((0.5 * 0.5**2 + (3.0 - 0.5)) / 2)
    loss.backward()
    assert teacher.grad is None and student.grad is not None
