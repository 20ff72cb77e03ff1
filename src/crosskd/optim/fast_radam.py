"""RAdam whose rectified steps run torch's fused single-pass Adam kernel (3-5x faster on CPU).

Once the variance rectification is on (rho_t > 5, i.e. from step 6 with the usual betas),
RAdam moves each parameter by

    lr * r_t * (m / (1 - beta1^t)) * sqrt(1 - beta2^t) / (sqrt(v) + eps)

and Adam with learning rate lr * r_t and epsilon eps / sqrt(1 - beta2^t) moves it by

    lr * r_t / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps / sqrt(1 - beta2^t)),

the same number (multiply the denominator by sqrt(1 - beta2^t)). The moment updates and the
coupled L2 weight decay (added to the gradient) are identical in both, so only rounding
differs. torch's fused Adam reads and writes each tensor once, with no temporaries, while
torch's RAdam makes several passes and full-size temporaries. Before rectification torch's
RAdam runs on flat chunks of the tensors (its update is elementwise, so chunking changes
nothing but the temporaries' size); for options the fused path does not cover, torch's RAdam
runs unchanged. The state is torch's RAdam state, so checkpoints move freely between the two.

For steps captured in a CUDA graph (capturable groups, crosskd.train.graphed_step) the two
scalar factors of each tensor's update, which hold the bias corrections and the
rectification, are computed for all tensors at once in float64, from step counts and a
learning rate that live on the device (so the update can be captured and a learning-rate
schedule changes nothing captured). The tensors are then cut into pieces of one fixed
size, each updated by one elementwise kernel, compiled once by torch.compile for that size,
that reads the parameter, gradient and moments once and writes them once (torch's foreach
RAdam makes about ten passes over 1 GB at MSRVTT size); the remainders and small tensors,
a few percent of the elements, go through torch's foreach kernels. The size is static on
purpose: a dynamic-shape kernel keeps the launch configuration tuned for the first, small,
tensor it ran, and its loads cannot assume aligned sizes (docs/PERFORMANCE.md, GPU).
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import torch
from torch.optim.adam import adam
from torch.optim.radam import radam

#: RAdam switches rectification on when rho_t exceeds this.
_RHO_THRESHOLD = 5.0
#: elements per chunk of the unrectified steps (bounds their temporaries to a few 4 MB).
_CHUNK = 2**20
#: parameter dtypes torch's fused Adam kernel accepts.
_FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: device types whose captured updates run compiled kernels (crosskd.train.graphed_step).
_ONE_KERNEL_DEVICES = ("cuda",)
#: elements per call of the compiled update: tensors are cut into pieces of exactly this
#: size, so one kernel, compiled once, serves them all (MSRVTT CE+: 232 pieces, 93% of the
#: elements); the remainders and smaller tensors go through torch's foreach kernels.
_PIECE = 2**20

log = logging.getLogger(__name__)


def radam_factors(steps: torch.Tensor, lr: torch.Tensor | float, beta1: float,
                  beta2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per tensor, the two factors of its RAdam update at its new step number `steps[i]`:
    the step is exp_avg * (adaptive / (sqrt(exp_avg_sq) + eps) + plain), one of them zero.

    Computed for all tensors at once in float64 (rho_t cancels catastrophically in float32
    at small t), apart from the elementwise update, which would otherwise be free to
    recompute these float64 powers and roots for every element.
    """
    step = steps.to(torch.float64)
    bias1 = 1 - beta1 ** step
    bias2 = 1 - beta2 ** step
    rho_inf = 2 / (1 - beta2) - 1
    rho = rho_inf - 2 * step * beta2 ** step / bias2
    rectified = rho > _RHO_THRESHOLD
    rect = torch.sqrt(((rho - 4) * (rho - 2) * rho_inf
                       / ((rho_inf - 4) * (rho_inf - 2) * rho)).clamp(min=0))
    lr = torch.as_tensor(lr, dtype=torch.float64, device=steps.device)
    adaptive = torch.where(rectified, lr * rect * bias2.sqrt() / bias1, 0.0)
    plain = torch.where(rectified, 0.0, lr / bias1)
    return adaptive, plain


def radam_update_(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor,
                  exp_avg_sq: torch.Tensor, adaptive: torch.Tensor, plain: torch.Tensor,
                  beta1: float, beta2: float, eps: float, weight_decay: float) -> None:
    """One RAdam update of `param` in place, given its `radam_factors` (0-d, param's dtype).

    Elementwise with no host reads, so that torch.compile fuses it into one kernel that reads
    the parameter, gradient and moments once, and a CUDA graph can capture it.
    """
    if weight_decay:
        grad = grad + weight_decay * param
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    param.sub_(exp_avg * (adaptive / (exp_avg_sq.sqrt() + eps) + plain))


class SinglePassRAdam(torch.optim.RAdam):
    """torch.optim.RAdam with identical results and state, stepping through fused Adam."""

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One RAdam update of every parameter that has a gradient."""
        if closure is None and self._one_kernel_path_applies():
            self._one_kernel_step()
            return None
        if closure is not None or not self._fused_path_applies():
            return super().step(closure)
        for group in self.param_groups:
            by_step: dict[float, list[torch.Tensor]] = {}
            for param in (p for p in group["params"] if p.grad is not None):
                state = self.state[param]
                if not state:  # the same lazy initialisation as torch's RAdam
                    state.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(param),
                                 exp_avg_sq=torch.zeros_like(param))
                by_step.setdefault(float(state["step"]) + 1, []).append(param)
            for step, params in by_step.items():
                self._update(group, step, params)
        return None

    def row_updates(self, param: torch.Tensor) -> Callable[[int, torch.Tensor], None] | None:
        """This step's update of `param`, a contiguous block of leading-dimension rows at a
        time: the function returned updates rows `start:start + len(grad)` from their
        gradient `grad`, with the same kernels `step()` uses (elementwise, so blocks give the
        whole tensor's result bit for bit). For a caller that computes a large gradient block
        by block while each block is in cache (crosskd.ops.shared_input_linear); the step
        count advances now, so every row must be updated once before the next step. None
        where `step()` would not take the fused path or `param` already has a gradient."""
        group = next((g for g in self.param_groups if any(p is param for p in g["params"])),
                     None)
        if (group is None or param.grad is not None or not param.is_contiguous()
                or param.device.type != "cpu" or param.dtype not in _FUSED_DTYPES
                or not self._fused_path_applies()):
            return None
        state = self.state[param]
        if not state:  # the same lazy initialisation as torch's RAdam
            state.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(param),
                         exp_avg_sq=torch.zeros_like(param))
        before = state["step"].clone()
        state["step"] += 1
        update = self._row_update(group, float(before) + 1)

        @torch.no_grad()
        def update_rows(start: int, grad: torch.Tensor) -> None:
            rows = slice(start, start + grad.shape[0])
            update(param[rows], grad, state["exp_avg"][rows], state["exp_avg_sq"][rows],
                   before.clone())
        return update_rows

    def _row_update(self, group: dict, step: float) -> Callable[..., None]:
        """The update `_update` makes of a tensor at step number `step`, as a function of
        (param, grad, exp_avg, exp_avg_sq, step count before the step) for blocks of rows."""
        fused = _fused_adam_arguments(group, step)
        if fused is None:
            def unrectified(param, grad, exp_avg, exp_avg_sq, count) -> None:
                # in chunks, as _chunks: torch's RAdam makes full-size temporaries
                parts = [t.reshape(-1).split(_CHUNK) for t in (param, grad, exp_avg, exp_avg_sq)]
                radam(*(list(p) for p in parts), [count.clone() for _ in parts[0]],
                      foreach=False, **_radam_arguments(group))
            return unrectified

        def rectified(param, grad, exp_avg, exp_avg_sq, count) -> None:
            adam([param], [grad], [exp_avg], [exp_avg_sq], [], [count], fused=True,
                 amsgrad=False, maximize=False, **fused)
        return rectified

    def _one_kernel_path_applies(self) -> bool:
        """True when every group is capturable (steps captured in a CUDA graph) with plain
        RAdam options, and every gradient is dense floating point on a device of
        _ONE_KERNEL_DEVICES. Eager steps keep torch's foreach RAdam: launched from Python, one
        compiled call per piece costs more host time than its few foreach calls."""
        grads = [p.grad for group in self.param_groups for p in group["params"]
                 if p.grad is not None]
        return bool(grads) and all(
            g.device.type in _ONE_KERNEL_DEVICES and not g.is_sparse
            and g.dtype.is_floating_point for g in grads) and all(
            group["capturable"] and not (group["decoupled_weight_decay"] or group["maximize"]
                                         or group["differentiable"])
            for group in self.param_groups)

    def _one_kernel_step(self) -> None:
        """Update every parameter with a gradient: whole pieces of _PIECE elements of the
        contiguous tensors through the compiled kernel, what is left through torch's foreach
        kernels."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._device_state(p) for p in params]
            steps = [state["step"] for state in states]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            factors = [_per_tensor(f, [p.dtype for p in params])
                       for f in radam_factors(torch.stack(steps), group["lr"], beta1, beta2)]
            hyper = (beta1, beta2, group["eps"], group["weight_decay"])
            rest: list[tuple[int, tuple[torch.Tensor, ...]]] = []
            for index, (param, state) in enumerate(zip(params, states)):
                tensors = (param, param.grad, state["exp_avg"], state["exp_avg_sq"])
                if not all(t.is_contiguous() for t in tensors):
                    rest.append((index, tensors))
                    continue
                flat = [t.view(-1) for t in tensors]
                whole = param.numel() // _PIECE * _PIECE
                if whole:
                    # fresh 0-d tensors: a view's storage offset would compile a kernel per index
                    own = [f[index].clone() for f in factors]
                    for begin in range(0, whole, _PIECE):
                        piece = tuple(t[begin:begin + _PIECE] for t in flat)
                        if not _one_kernel_update(*piece, *own, *hyper):
                            rest.append((index, piece))
                if whole < param.numel():
                    rest.append((index, tuple(t[whole:] for t in flat)))
            if rest:
                tensors = [list(column) for column in zip(*(t for _, t in rest))]
                _foreach_update(*tensors, *([f[index] for index, _ in rest] for f in factors),
                                *hyper)

    def _device_state(self, param: torch.Tensor) -> dict:
        """The parameter's RAdam state, created like torch's capturable RAdam creates it, with
        a step count moved to the parameter's device if a checkpoint left it on the host."""
        state = self.state[param]
        if not state:
            state.update(step=torch.zeros((), device=param.device),
                         exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param))
        elif state["step"].device != param.device:
            state["step"] = state["step"].to(param.device)
        return state

    def _fused_path_applies(self) -> bool:
        """True when every group uses plain RAdam options on dense floating CPU tensors."""
        for group in self.param_groups:
            if (group["decoupled_weight_decay"] or group["maximize"] or group["capturable"]
                    or group["differentiable"] or isinstance(group["lr"], torch.Tensor)):
                return False
            for param in group["params"]:
                if param.grad is not None and (param.device.type != "cpu" or param.grad.is_sparse
                                               or param.dtype not in _FUSED_DTYPES):
                    return False
        return True

    def _update(self, group: dict, step: float, params: list[torch.Tensor]) -> None:
        """Update `params`, whose next step number is `step`, with one call of torch's kernels."""
        fused = _fused_adam_arguments(group, step)
        if fused is None:
            radam(*self._chunks(params), foreach=False, **_radam_arguments(group))
            return
        states = [self.state[p] for p in params]
        adam(params, [p.grad for p in params], [s["exp_avg"] for s in states],
             [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states], fused=True,
             amsgrad=False, maximize=False, **fused)

    def _chunks(self, params: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Flat views of at most _CHUNK elements of params, grads and moments, with one copy of
        the step count per chunk (torch's RAdam counts each); the real counts advance once."""
        columns: list[list[torch.Tensor]] = [[], [], [], [], []]
        for param in params:
            state = self.state[param]
            tensors = (param, param.grad, state["exp_avg"], state["exp_avg_sq"])
            flat = all(t.is_contiguous() for t in tensors)
            parts = [t.view(-1).split(_CHUNK) if flat else (t,) for t in tensors]
            for column, part in zip(columns, parts):
                column.extend(part)
            columns[4].extend(state["step"].clone() for _ in parts[0])
            state["step"] += 1
        return columns


def _radam_arguments(group: dict) -> dict:
    """torch's functional radam's hyperparameters of a parameter group."""
    beta1, beta2 = group["betas"]
    return {"beta1": beta1, "beta2": beta2, "weight_decay": group["weight_decay"],
            "lr": group["lr"], "eps": group["eps"]}


def _fused_adam_arguments(group: dict, step: float) -> dict | None:
    """The hyperparameters with which torch's fused Adam makes RAdam's update at step number
    `step` (see the module docstring); None before rectification."""
    beta1, beta2 = group["betas"]
    rho_inf = 2 / (1 - beta2) - 1
    correction2 = 1 - beta2 ** step
    rho = rho_inf - 2 * step * beta2 ** step / correction2
    if rho <= _RHO_THRESHOLD:
        return None
    rect = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    return {"beta1": beta1, "beta2": beta2, "weight_decay": group["weight_decay"],
            "lr": group["lr"] * rect, "eps": group["eps"] / math.sqrt(correction2)}


def _per_tensor(values: torch.Tensor, dtypes: list[torch.dtype]) -> list[torch.Tensor]:
    """`values[i]` as a 0-d tensor of dtype `dtypes[i]`: one conversion per dtype, then views
    (no indexing kernel, so nothing copies indices to the device inside a capture)."""
    converted = {dtype: values.to(dtype) for dtype in set(dtypes)}
    return [converted[dtype][i] for i, dtype in enumerate(dtypes)]


def _foreach_update(params: list[torch.Tensor], grads: list[torch.Tensor],
                    exp_avgs: list[torch.Tensor], exp_avg_sqs: list[torch.Tensor],
                    adaptive: list[torch.Tensor], plain: list[torch.Tensor], beta1: float,
                    beta2: float, eps: float, weight_decay: float) -> None:
    """`radam_update_` of many tensors through torch's foreach kernels (a few launches for
    all of them, where the compiled kernel takes one launch per piece)."""
    if weight_decay:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    scale = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_add_(scale, eps)
    torch._foreach_reciprocal_(scale)
    torch._foreach_mul_(scale, adaptive)
    torch._foreach_add_(scale, plain)
    torch._foreach_mul_(scale, exp_avgs)
    torch._foreach_sub_(params, scale)


#: radam_update_ compiled for pieces: None until first used, False if compiling failed.
_compiled_update: Callable[..., None] | bool | None = None


def _one_kernel_update(*args) -> bool:
    """radam_update_ of one piece through the kernel compiled on first use; False, with
    nothing updated, when torch.compile cannot build it (the caller then updates the piece
    through torch's foreach kernels)."""
    global _compiled_update
    if _compiled_update is False:
        return False
    if _compiled_update is None:
        compiled = torch.compile(radam_update_, dynamic=False)
        try:
            compiled(*args)
        except Exception as err:  # no working compiler backend (e.g. no C compiler for Triton)
            log.warning("torch.compile of the RAdam update failed (%s: %s); updating through "
                        "torch's foreach kernels instead", type(err).__name__, err)
            _compiled_update = False
            return False
        _compiled_update = compiled
        return True
    _compiled_update(*args)
    return True
