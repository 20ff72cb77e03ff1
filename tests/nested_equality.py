"""Bit-for-bit equality of nested checkpoint contents, shared by the resume tests."""

from __future__ import annotations

import torch


def same_nested(left, right) -> bool:
    """Exact equality of nested dicts/lists of tensors and plain values (dtype included)."""
    if isinstance(left, torch.Tensor):
        return (isinstance(right, torch.Tensor) and left.dtype == right.dtype
                and torch.equal(left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same_nested(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(map(same_nested, left, right))
    return left == right
