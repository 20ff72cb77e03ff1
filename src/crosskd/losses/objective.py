"""The training objective: a weighted sum of terms over the model output and the batch."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from crosskd.data.batch import Batch
from crosskd.losses.spec import ObjectiveSpec
from crosskd.losses.terms import TERMS, Output


class RetrievalObjective(nn.Module):
    """Total loss = sum of weight * term, e.g. ranking + teacher + cap_w * caption term.

    Terms that are switched off (no teacher loss, zero weight) are not in the list: they are
    neither computed nor reported. A first term of weight 1 is taken as it is, so the total
    of the published objectives is bit-identical to adding the terms by hand.
    """

    def __init__(self, terms: Sequence[tuple[str, float, nn.Module]]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("an objective needs at least one term")
        self.weights = {name: float(weight) for name, weight, _ in terms}
        self.parts = nn.ModuleDict({name: term for name, _, term in terms})

    def forward(self, output: Output, batch: Batch | None = None
                ) -> tuple[torch.Tensor, dict[str, float]]:
        """The total and every term's unweighted value as a host float."""
        total, terms = self.terms(output, batch)
        # one device-to-host copy for every term, not one per term
        values = torch.stack(list(terms.values())).tolist()
        return total, dict(zip(terms, values))

    def terms(self, output: Output, batch: Batch | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total and every term's detached float32 value, all left on the device (what a
        captured CUDA graph returns: it cannot copy to the host)."""
        values = {name: term(output, batch) for name, term in self.parts.items()}
        total = None
        for name, value in values.items():
            weight = self.weights[name]
            if total is None:
                total = value if weight == 1.0 else weight * value
            else:
                total = total + weight * value
        return total, {name: value.detach().float() for name, value in values.items()}


def build_objective(spec: ObjectiveSpec) -> RetrievalObjective:
    """The objective an objective part describes (crosskd.config.objective builds the part)."""
    return RetrievalObjective([(term.name, term.weight, TERMS[term.kind](**term.args))
                               for term in spec.terms])
