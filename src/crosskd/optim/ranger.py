"""Ranger, the optimizer of the collaborative-experts base configs: RAdam with Lookahead.

Our own small wrapper rather than a package: the original vendors lessw2020's Ranger, which
is torch's RAdam with the weight decay applied to the weights (`decoupled_weight_decay`),
betas (0.95, 0.999), eps 1e-5, plus Lookahead: every `k`-th step of a parameter its slow
copy moves `alpha` of the way to it and the parameter is set to the slow copy. torch ships
the RAdam part; the Lookahead part is a few lines here, kept per parameter (the step count
is RAdam's own), so stepping parameters one at a time inside backward
(crosskd.train.backward_step) gives the same weights as one step after it, and the slow
copies sit in the optimizer state, so checkpoints and resume carry them as they are.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch


class Ranger(torch.optim.RAdam):
    """RAdam (weight decay on the weights) with Lookahead, the original's defaults."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3,
                 alpha: float = 0.5, k: int = 6, betas: tuple[float, float] = (0.95, 0.999),
                 eps: float = 1e-5, weight_decay: float = 0.0) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Ranger alpha (the slow weights' step) must be in [0, 1], "
                             f"not {alpha}")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"Ranger k (steps between lookahead updates) must be an integer "
                             f">= 1, not {k!r}")
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)
        self.defaults.update(alpha=alpha, k=k)
        for group in self.param_groups:
            group.setdefault("alpha", alpha)
            group.setdefault("k", k)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One RAdam update of every parameter with a gradient, then Lookahead where due."""
        stepped = [(group, p) for group in self.param_groups for p in group["params"]
                   if p.grad is not None]
        # the slow copy starts as the weights before their first update, as in the original
        fresh = {p: p.detach().clone() for _, p in stepped if not self.state[p]}
        loss = super().step(closure)
        for group, param in stepped:
            state = self.state[param]
            if param in fresh:
                state["slow_buffer"] = fresh[param]
            if int(state["step"]) % group["k"] == 0:
                slow = state["slow_buffer"]
                slow.add_(param - slow, alpha=group["alpha"])
                param.copy_(slow)
        return loss
