"""Fast paths of the model as ops: each beside a plain reference that computes the same.

Ops are plain functions and modules that hold no state and read no setting: model code
calls the ones that compute its own math faster (`l2_normalize`, `vlad_normalise`,
`shared_input_linear`, `groupwise_batch_norm`); the runtime layer swaps the others into a
built model (`use_product_plan`, from crosskd.train.runtime.Runtime.prepare_model). `OPS` lists
every one with its reference and an example input, and tests/ops/test_ops.py checks each
pair agrees in values and gradients, so a new op added here is tested without a new test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from crosskd.ops import cpu_matmul as _cpu_matmul
from crosskd.ops import groupwise_batch_norm as _groupwise
from crosskd.ops import l2norm as _l2norm
from crosskd.ops import shared_input as _shared_input
from crosskd.ops import vlad_normalisation as _vlad
from crosskd.ops.cpu_matmul import PlannedLinear, planned_linear, use_product_plan
from crosskd.ops.groupwise_batch_norm import PendingRunningStats, groupwise_batch_norm
from crosskd.ops.l2norm import EPS, l2_normalize
from crosskd.ops.shared_input import shared_input_linear
from crosskd.ops.vlad_normalisation import vlad_normalise

__all__ = ["EPS", "OPS", "Op", "PendingRunningStats", "PlannedLinear", "groupwise_batch_norm",
           "l2_normalize", "planned_linear", "shared_input_linear", "use_product_plan",
           "vlad_normalise"]


@dataclass(frozen=True)
class Op:
    """A fast path and its plain reference, called alike.

    `example(dtype)` returns fresh, seeded arguments for both (tensors that need gradients,
    modules whose parameters and buffers are compared too); `torch.bfloat16` asks for the
    arguments autocast would pass. `exact`: the forward values are bit for bit the reference's.
    """

    name: str
    fast: Callable[..., Any]
    reference: Callable[..., Any]
    example: Callable[[torch.dtype], tuple[Any, ...]]
    exact: bool


OPS: tuple[Op, ...] = (
    Op("planned_linear on oneDNN", planned_linear, F.linear, _cpu_matmul.example, exact=False),
    Op("l2_normalize", l2_normalize, _l2norm.reference_l2_normalize, _l2norm.example,
       exact=True),
    Op("vlad_normalise", vlad_normalise, _vlad.reference_vlad_normalise, _vlad.example,
       exact=False),
    Op("shared_input_linear", shared_input_linear,
       _shared_input.reference_shared_input_linear, _shared_input.example, exact=True),
    Op("shared_input_linear on oneDNN", shared_input_linear,
       _shared_input.reference_shared_input_linear, _shared_input.onednn_example,
       exact=False),
    Op("groupwise_batch_norm", groupwise_batch_norm,
       _groupwise.reference_groupwise_batch_norm, _groupwise.example, exact=False),
    Op("deferred_running_stats", _groupwise.deferred_groupwise_batch_norms,
       _groupwise.reference_groupwise_batch_norms, _groupwise.deferred_example, exact=False),
)
