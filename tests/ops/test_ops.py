"""Every fast op in crosskd.ops.OPS agrees with its plain reference: values, gradients, buffers.

Each op runs on its own example twice, fast and reference, with the same upstream gradients
(the last of several outputs left unused, so a path that must leave its inputs without
gradient is exercised). Tolerances are relative to the largest entry of the reference in
the same row (along the first dimension; below eps a row's gradients are ~1e12 times the
others'): float64 1e-10 (the closed forms are exact up to rounding), float32 1e-5,
bfloat16 autocast on the CPU 2e-2 (a few bfloat16 steps). `exact` ops match bit for bit in
float32 and float64.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
import torch
from torch import nn

from crosskd.ops import OPS, Op

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5, torch.bfloat16: 2e-2}
DTYPES = list(TOLERANCE)


def _walk(args: Any) -> Iterator[Any]:
    if isinstance(args, (list, tuple)):
        for arg in args:
            yield from _walk(arg)
    else:
        yield args


def _modules(args: tuple[Any, ...]) -> list[nn.Module]:
    return [arg for arg in _walk(args) if isinstance(arg, nn.Module)]


def _leaves(args: tuple[Any, ...]) -> list[torch.Tensor]:
    """The arguments' tensors that need a gradient, then every module's parameters."""
    tensors = [arg for arg in _walk(args) if isinstance(arg, torch.Tensor) and arg.requires_grad]
    return tensors + [p for module in _modules(args) for p in module.parameters()]


def _outputs(result: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return result if isinstance(result, tuple) else (result,)


def _run(op: Op, function: Callable[..., Any], dtype: torch.dtype, training: bool,
         gradients: bool = True) -> dict[str, list[torch.Tensor | None]]:
    """Outputs, gradients of every leaf and every module buffer after one call and backward."""
    args = op.example(dtype)
    for module in _modules(args):
        module.train(training)
    with torch.set_grad_enabled(gradients), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        outputs = _outputs(function(*args))
    generator = torch.Generator().manual_seed(1)
    if gradients:
        used = outputs[:-1] if len(outputs) > 1 else outputs
        loss = sum((out.double() * torch.randn(out.shape, generator=generator,
                                               dtype=torch.float64)).sum() for out in used)
        loss.backward()
    return {"outputs": [out.detach() for out in outputs],
            "gradients": [leaf.grad for leaf in _leaves(args)],
            "buffers": [b for module in _modules(args) for b in module.buffers()]}


def _scale(reference: torch.Tensor) -> torch.Tensor:
    """Each entry's scale: the largest magnitude in its row (along the first dimension)."""
    magnitude = reference.double().abs()
    rows = magnitude.reshape(magnitude.shape[0] if magnitude.dim() else 1, -1).amax(1)
    return rows.reshape(-1, *([1] * max(magnitude.dim() - 1, 0))).clamp_min(1e-300)


def _assert_agree(fast: list[torch.Tensor | None], reference: list[torch.Tensor | None],
                  tolerance: float, exact: bool, what: str) -> None:
    assert len(fast) == len(reference), what
    for index, (ours, theirs) in enumerate(zip(fast, reference)):
        where = f"{what} {index}"
        if theirs is None or ours is None:
            assert ours is None and theirs is None, where
            continue
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
        if exact:
            assert torch.equal(ours, theirs), where
            continue
        error = (ours.double() - theirs.double()).abs()
        assert bool((error <= tolerance * _scale(theirs)).all()), (
            f"{where}: off by up to {float((error / _scale(theirs)).max()):.2e} of its row, "
            f"allowed {tolerance:.0e}")


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_fast_op_agrees_with_its_reference(op: Op, dtype: torch.dtype, training: bool):
    fast = _run(op, op.fast, dtype, training)
    reference = _run(op, op.reference, dtype, training)
    exact = op.exact and dtype != torch.bfloat16
    tolerance = TOLERANCE[dtype]
    _assert_agree(fast["outputs"], reference["outputs"], tolerance, exact, "output")
    _assert_agree(fast["gradients"], reference["gradients"], tolerance, False, "gradient")
    _assert_agree(fast["buffers"], reference["buffers"], tolerance, False, "buffer")


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_without_gradients_the_values_are_the_same(op: Op):
    """Fast ops may take another path when no gradient is recorded (in place, say)."""
    fast = _run(op, op.fast, torch.float32, True, gradients=False)
    reference = _run(op, op.reference, torch.float32, True, gradients=False)
    _assert_agree(fast["outputs"], reference["outputs"], TOLERANCE[torch.float32], op.exact,
                  "output")
    _assert_agree(fast["buffers"], reference["buffers"], TOLERANCE[torch.float32], False,
                  "buffer")
