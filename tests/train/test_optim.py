"""SinglePassRAdam against torch.optim.RAdam, and optimizer/scheduler config validation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.config import ConfigError, optimizer_spec, scheduler_spec
from crosskd.errors import UserError
from crosskd.optim import fast_radam
from crosskd.optim.fast_radam import SinglePassRAdam
from crosskd.train.graphed_step import prepare_optimizer
from crosskd.optim import build_optimizer, build_scheduler

ARGS = {"lr": 1e-3, "weight_decay": 1e-5}
#: (rtol, atol) between the fused path and torch's RAdam, which differ only in rounding:
#: on float32 parameters, and on the float64 displacement from the initial values (~1e-2).
TOLERANCE = {torch.float32: (1e-6, 1e-8), torch.float64: (1e-10, 1e-13)}
SHAPES = [(33, 17), (17,), (5, 3, 2), (1,)]


def _params(dtype: torch.dtype = torch.float32) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=dtype))
            for shape in SHAPES]


def _step_lr(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.StepLR:
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)


def _run(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], steps: range,
         skip: int | None = None, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
         ) -> None:
    """Step with seeded gradients (a fresh draw per step number) and a StepLR halving lr."""
    scheduler = _step_lr(optimizer) if scheduler is None else scheduler
    for step in steps:
        generator = torch.Generator().manual_seed(1000 + step)
        for index, param in enumerate(params):
            param.grad = (None if index == skip and step % 3 == 0
                          else torch.randn(param.shape, generator=generator, dtype=param.dtype))
        optimizer.step()
        scheduler.step()


def _assert_close(ours: list[torch.Tensor], theirs: list[torch.Tensor],
                  tolerance: tuple[float, float] | None = None) -> None:
    for a, b in zip(ours, theirs):
        rtol, atol = tolerance or TOLERANCE[a.dtype]
        torch.testing.assert_close(a.detach(), b.detach(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("skip, chunk", [(None, fast_radam._CHUNK), (1, fast_radam._CHUNK),
                                         (None, 7)])
def test_matches_torch_radam_over_many_steps(skip, chunk, monkeypatch):
    """12 float32 steps (7 rectified, lr changing) give torch's parameters and moments, also when
    one parameter misses some gradients and so falls behind the others' step count, and when
    the unrectified steps split the parameters into chunks."""
    monkeypatch.setattr(fast_radam, "_CHUNK", chunk)
    _compare_twelve_steps_with_torch(torch.float32, skip)


def _compare_twelve_steps_with_torch(dtype: torch.dtype, skip: int | None,
                                    capturable: bool = False,
                                    tolerance: tuple[float, float] | None = None) -> None:
    """Parameters, step counts and both moments of SinglePassRAdam and torch's RAdam agree."""
    ours, theirs = _params(dtype), _params(dtype)
    fast = SinglePassRAdam(ours, **ARGS, capturable=capturable)
    reference = torch.optim.RAdam(theirs, **ARGS)
    _run(fast, ours, range(12), skip)
    _run(reference, theirs, range(12), skip)
    _assert_close(ours, theirs, tolerance)
    for a, b in zip(ours, theirs):
        assert float(fast.state[a]["step"]) == float(reference.state[b]["step"])
        for moment in ("exp_avg", "exp_avg_sq"):
            _assert_close([fast.state[a][moment]], [reference.state[b][moment]], tolerance)


def test_the_updates_match_torch_radam_to_float64_rounding():
    """In float64 the displacement itself (not hidden by the parameters' rounding) agrees."""
    start, ours, theirs = (_params(torch.float64) for _ in range(3))
    _run(SinglePassRAdam(ours, **ARGS), ours, range(12))
    _run(torch.optim.RAdam(theirs, **ARGS), theirs, range(12))
    moved = [(a - s).detach() for a, s in zip(ours, start)]
    assert all(float(m.abs().max()) > 1e-4 for m in moved), "every parameter must move"
    _assert_close(moved, [(b - s).detach() for b, s in zip(theirs, start)])


def test_rectified_steps_use_the_fused_kernel(monkeypatch):
    calls = []
    monkeypatch.setattr(fast_radam, "adam", lambda *a, **k: calls.append(k["fused"]))
    params = _params()
    _run(SinglePassRAdam(params, **ARGS), params, range(7))
    assert calls == [True, True]  # steps 6 and 7; torch's RAdam did steps 1-5


@pytest.mark.parametrize("first, second", [(torch.optim.RAdam, SinglePassRAdam),
                                           (SinglePassRAdam, torch.optim.RAdam)])
def test_state_dicts_move_between_the_classes(first, second):
    """A checkpoint of either class resumes in the other and continues like an unbroken run."""
    resumed, unbroken = _params(), _params()
    saved = first(resumed, **ARGS)
    saved_scheduler = _step_lr(saved)
    _run(saved, resumed, range(7), scheduler=saved_scheduler)
    state, scheduler_state = saved.state_dict(), saved_scheduler.state_dict()
    continued = second(resumed, **ARGS)
    scheduler = _step_lr(continued)
    continued.load_state_dict(state)
    scheduler.load_state_dict(scheduler_state)
    assert continued.state_dict()["param_groups"] == state["param_groups"]
    _run(continued, resumed, range(7, 12), scheduler=scheduler)
    _run(torch.optim.RAdam(unbroken, **ARGS), unbroken, range(12))
    _assert_close(resumed, unbroken)


def test_options_the_fused_path_lacks_run_torch_radam_bit_exactly():
    ours, theirs = _params(), _params()
    args = {**ARGS, "decoupled_weight_decay": True}
    _run(SinglePassRAdam(ours, **args), ours, range(8))
    _run(torch.optim.RAdam(theirs, **args), theirs, range(8))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


@pytest.fixture
def one_kernel_on_cpu(monkeypatch):
    """The GPU path of SinglePassRAdam, run on the CPU and uncompiled (the function the GPU
    compiles into one kernel), in pieces of 8 elements: the (33, 17), (17,) and (5, 3, 2)
    tensors are cut into pieces and remainders, the (1,) tensor is a remainder only."""
    monkeypatch.setattr(fast_radam, "_ONE_KERNEL_DEVICES", ("cpu",))
    monkeypatch.setattr(fast_radam, "_compiled_update", fast_radam.radam_update_)
    monkeypatch.setattr(fast_radam, "_PIECE", 8)


def test_the_compiled_kernel_sees_one_size_and_fresh_factors(one_kernel_on_cpu, monkeypatch):
    """What keeps it to one compiled kernel: every call gets pieces of exactly _PIECE elements
    and 0-d factors of their own (a view's storage offset would compile anew per tensor)."""
    calls = []
    monkeypatch.setattr(fast_radam, "_compiled_update", lambda *args: calls.append(args))
    params = _params()
    _run(SinglePassRAdam(params, **ARGS, capturable=True), params, range(1))
    assert len(calls) == 561 // 8 + 17 // 8 + 30 // 8
    assert all(t.shape == (8,) for args in calls for t in args[:4])
    assert all(t.dim() == 0 and t.storage_offset() == 0 and t.dtype == torch.float32
               for args in calls for t in args[4:6])


@pytest.mark.parametrize("dtype, skip", [(torch.float32, None), (torch.float32, 1),
                                         (torch.float64, None)])
def test_the_one_kernel_update_matches_torch_radam(one_kernel_on_cpu, dtype, skip):
    """12 steps (5 unrectified, lr halved by StepLR), a parameter sometimes without gradient:
    the parameters and moments of torch's RAdam, with the step counts kept as tensors."""
    _compare_twelve_steps_with_torch(dtype, skip, capturable=True)


@pytest.mark.slow  # compiles a kernel, ~5 s on a 2-core CPU
def test_the_compiled_update_matches_torch_radam(monkeypatch):
    """The kernel torch.compile makes (here for the CPU; on a GPU for it), compiled once for
    all pieces. The compiler contracts multiplies and adds, so rounding differs a little."""
    monkeypatch.setattr(fast_radam, "_ONE_KERNEL_DEVICES", ("cpu",))
    monkeypatch.setattr(fast_radam, "_compiled_update", None)
    monkeypatch.setattr(fast_radam, "_PIECE", 8)
    compiled_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    _compare_twelve_steps_with_torch(torch.float32, 1, capturable=True, tolerance=(1e-5, 1e-7))
    assert callable(fast_radam._compiled_update)  # compiled, no fallback
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == compiled_before + 1


def test_eager_steps_keep_torch_radam_on_the_device(one_kernel_on_cpu, monkeypatch):
    """Without capture (a plain group) the one-kernel path is not taken."""
    monkeypatch.setattr(fast_radam, "_compiled_update", None)
    monkeypatch.setattr(fast_radam, "_one_kernel_update", lambda *args: pytest.fail("used"))
    params = _params()
    _run(SinglePassRAdam(params, **ARGS), params, range(2))


def test_the_one_kernel_update_takes_a_tensor_lr_and_resumes_from_torch(one_kernel_on_cpu):
    """A CUDA-graph run keeps lr as a tensor (StepLR fills it in place); it resumes from a
    torch RAdam checkpoint and continues like an unbroken run."""
    resumed, unbroken = _params(), _params()
    saved = torch.optim.RAdam(resumed, **ARGS)
    _run(saved, resumed, range(7))
    continued = SinglePassRAdam(resumed, **ARGS)
    scheduler = _step_lr(continued)
    continued.load_state_dict(saved.state_dict())
    prepare_optimizer(continued, torch.device("cpu"))  # as a graphed trainer does
    scheduler.last_epoch = 7
    _run(continued, resumed, range(7, 12), scheduler=scheduler)
    _run(torch.optim.RAdam(unbroken, **ARGS), unbroken, range(12))
    _assert_close(resumed, unbroken)


def test_a_failing_compile_updates_through_foreach(one_kernel_on_cpu, monkeypatch, caplog):
    """Without a working compiler every piece goes to torch's foreach kernels, from the piece
    whose compile failed on, with the same results."""
    def broken(*args):
        raise RuntimeError("no backend")

    monkeypatch.setattr(fast_radam, "_compiled_update", None)
    monkeypatch.setattr(torch, "compile", lambda function, **options: broken)
    _compare_twelve_steps_with_torch(torch.float32, None, capturable=True)
    assert "foreach kernels instead" in caplog.text
    assert fast_radam._compiled_update is False


def test_build_optimizer_maps_the_config_types():
    params = _params()
    assert type(build_optimizer(optimizer_spec({"optimizer": {"type": "RAdam", "args": ARGS}}), params)) \
        is SinglePassRAdam
    assert type(build_optimizer(optimizer_spec({"optimizer": {"type": "Adam", "args": ARGS}}), params)) \
        is torch.optim.Adam
    frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    optimizer = build_optimizer(optimizer_spec({"optimizer": {"type": "SGD", "args": {"lr": 0.1}}}),
                                [*params, frozen])
    assert all(p is not frozen for p in optimizer.param_groups[0]["params"])


@pytest.mark.parametrize("block, key", [
    ({"type": "RAdam", "args": {"lr": "fast"}}, "optimizer.args"),
    ({"type": "RAdam", "args": {"betas": [0.9, 0.99, 0.999]}}, "optimizer.args"),
    ({"type": "RAdam", "args": {"betas": {"a": 1}}}, "optimizer.args"),
    ({"type": "RAdam", "args": {"lr": -1}}, "optimizer.args"),
    ({"type": "RAdam", "args": {"fused": True}}, "optimizer.args"),
    ({"type": "RAdam", "args": [0.001]}, "optimizer.args"),
    ({"type": ["RAdam"], "args": {}}, "optimizer.type"),
    ({"type": "Lion", "args": {}}, "optimizer.type"),
    ({"args": {}}, "optimizer.type"),
    ("RAdam", "optimizer"),
])
def test_damaged_optimizer_blocks_are_config_errors(block, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_optimizer(optimizer_spec({"optimizer": block}), _params())


@pytest.mark.parametrize("block, key", [
    ({"type": "StepLR", "args": {"step_size": 0}}, "lr_scheduler.args"),
    ({"type": "StepLR", "args": {"step_size": 1, "gamma": "x"}}, "lr_scheduler.args"),
    ({"type": "StepLR", "args": {}}, "lr_scheduler.args"),
    ({"type": "MultiStepLR", "args": {"milestones": 3}}, "lr_scheduler.args"),
    ({"type": "StepLR", "args": None}, "lr_scheduler.args"),
    ({"type": 3, "args": {}}, "lr_scheduler.type"),
    ([1], "lr_scheduler"),
])
def test_damaged_scheduler_blocks_are_config_errors(block, key):
    optimizer = torch.optim.SGD(_params(), lr=0.1)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_scheduler(scheduler_spec({"lr_scheduler": block}), optimizer)


def test_a_valid_scheduler_leaves_the_optimizer_untouched():
    optimizer = torch.optim.SGD(_params(), lr=0.1)
    scheduler = build_scheduler(scheduler_spec({"lr_scheduler": {"type": "StepLR",
                                                  "args": {"step_size": 1, "gamma": 0.5}}}),
                                optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.1
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    assert build_scheduler(scheduler_spec({}), optimizer) is None


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(width=32),
              st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=8)
arg_names = st.sampled_from(["lr", "weight_decay", "betas", "eps", "step_size", "gamma",
                             "milestones", "momentum", "last_epoch", "foreach", "x"])
blocks = st.one_of(json_values, st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["RAdam", "Adam", "AdamW", "SGD", "StepLR",
                                        "MultiStepLR", "ExponentialLR"]), json_values)},
    optional={"args": st.one_of(json_values, st.dictionaries(arg_names, json_values,
                                                             max_size=3))}))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(optimizer=blocks, scheduler=blocks)
def test_any_json_block_builds_or_is_refused_with_a_user_error(optimizer, scheduler):
    """Whatever JSON a user puts in the two blocks: a working pair, or one UserError line."""
    params = _params()
    for param in params:
        param.grad = torch.ones_like(param)
    try:
        built = build_optimizer(optimizer_spec({"optimizer": optimizer}), params)
        schedule = build_scheduler(scheduler_spec({"lr_scheduler": scheduler}), built)
        if schedule is not None:
            for _ in range(3):
                built.step()
                schedule.step()
    except UserError as err:
        assert str(err).strip()


def _step_by_rows(shapes: list[tuple[int, int]], rows: list[int], chunk: int):
    """Twelve steps (five unrectified, in chunks of `chunk` elements; seven through fused Adam)
    of step() with whole gradients and of row_updates with blocks of `rows` rows (cycled), a
    scheduler changing lr on the way: both optimizers and their parameters."""
    original = fast_radam._CHUNK
    fast_radam._CHUNK = chunk
    try:
        generator = torch.Generator().manual_seed(0)
        whole = [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in shapes]
        by_rows = [torch.nn.Parameter(p.detach().clone()) for p in whole]
        stepped, updated = (SinglePassRAdam(p, **ARGS) for p in (whole, by_rows))
        schedulers = [_step_lr(stepped), _step_lr(updated)]
        for step in range(12):
            grads = [torch.randn(p.shape, generator=generator) for p in whole]
            for param, grad in zip(whole, grads):
                param.grad = grad.clone()
            stepped.step()
            for param, grad in zip(by_rows, grads):
                update = updated.row_updates(param)
                bounds = [0]
                while bounds[-1] < len(param):
                    bounds.append(min(len(param), bounds[-1] + rows[len(bounds) % len(rows)]))
                for begin, end in zip(bounds, bounds[1:]):
                    update(begin, grad[begin:end])
            for scheduler in schedulers:
                scheduler.step()
    finally:
        fast_radam._CHUNK = original
    return (stepped, whole), (updated, by_rows)


@pytest.mark.filterwarnings("ignore:Detected call of")  # row updates never call step()
@settings(max_examples=10, deadline=None)
@given(rows=st.lists(st.integers(1, 9), min_size=1, max_size=4),
       chunk=st.sampled_from([192, 2**20]))
def test_row_updates_of_whole_vectors_are_step_bit_for_bit(rows, chunk):
    """Where every block and chunk starts a multiple of 64 elements in (the text projections'
    rows are 44,800 wide), torch's vectorised kernels meet every element in the same lane, and
    row updates give step()'s parameters, moments and step counts bit for bit."""
    (stepped, whole), (updated, by_rows) = _step_by_rows([(33, 64), (17, 128), (5, 192)],
                                                          rows, chunk)
    for a, b in zip(whole, by_rows):
        assert torch.equal(a, b) and b.grad is None
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(stepped.state[a][key], updated.state[b][key]), key


@pytest.mark.filterwarnings("ignore:Detected call of")
@settings(max_examples=10, deadline=None)
@given(rows=st.lists(st.integers(1, 33), min_size=1, max_size=4), chunk=st.sampled_from([7, 2**20]))
def test_row_updates_of_any_blocks_are_step_to_rounding(rows, chunk):
    """Any block sizes: the same up to the rounding of a scalar tail (no FMA) against a lane."""
    (stepped, whole), (updated, by_rows) = _step_by_rows([(33, 17), (40, 3), (1, 5)], rows, chunk)
    _assert_close(by_rows, whole)
    for a, b in zip(whole, by_rows):
        assert float(stepped.state[a]["step"]) == float(updated.state[b]["step"]) == 12
        _assert_close([updated.state[b]["exp_avg_sq"]], [stepped.state[a]["exp_avg_sq"]])


def test_row_updates_are_offered_only_where_step_would_fuse():
    """None for a parameter that already has a gradient, that the optimizer does not hold,
    or whose group has options the fused path lacks."""
    params = _params()
    optimizer = SinglePassRAdam(params, **ARGS)
    assert optimizer.row_updates(torch.nn.Parameter(torch.ones(3))) is None
    params[0].grad = torch.ones_like(params[0])
    assert optimizer.row_updates(params[0]) is None
    assert optimizer.row_updates(params[1]) is not None
    assert SinglePassRAdam(_params(), **ARGS, maximize=True).row_updates(params[2]) is None
    odd = _params()
    assert SinglePassRAdam(odd, **ARGS, decoupled_weight_decay=True).row_updates(odd[0]) is None
