"""Helpers of the loss tests."""

from __future__ import annotations

import torch

from crosskd.data.batch import Batch


def teacher_batch(distil_text, distil_video) -> Batch:
    """A batch holding only teacher tensors: what the objective reads besides the output."""
    empty = torch.empty(0)
    return Batch(experts={}, ind={}, text=empty, text_token_mask=empty,
                 distil_text=distil_text, distil_video=distil_video)
