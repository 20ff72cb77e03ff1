"""Stepping the optimizer inside backward changes memory, not results."""

from __future__ import annotations

import copy
import re
import weakref

import pytest
import torch

from crosskd.config import ConfigError
from crosskd.ops import PlannedLinear, cpu_matmul, shared_input_linear
from crosskd.ops.low_precision_copy import LowPrecisionCopy
from crosskd.train import runners, weight_gradients
from crosskd.train.backward_step import GradientBuffers, step_during_backward
from crosskd.train.trainer import Trainer
from trainers import trainer_for
from crosskd.train.weight_gradients import StreamedLinear, stream_weight_gradients
from nested_equality import same_nested


#: biases whose output goes straight into a batch norm (the context gates' and the gate MLP's
#: first layer): the norm removes any constant, so their exact gradient is zero and what
#: backward computes is rounding noise, which Adam-type optimizers scale up to whole steps
BATCH_NORM_FED = re.compile(r"(\.cg\.fc|\.g_reason_1)\.bias$")
#: the learning rate of these runs: no parameter can be further apart than a step or two
LR = 0.01


#: the tiny model's text projections (32 x 900 float32) and nothing smaller are streamed,
#: as the MSRVTT text projections are at the default threshold
TEXT_PROJECTION_BYTES = 32 * 900 * 4


@pytest.fixture
def data(tiny_msrvtt, monkeypatch):
    monkeypatch.setattr(weight_gradients, "MIN_STREAMED_BYTES", TEXT_PROJECTION_BYTES)
    return tiny_msrvtt


def _trainer(data, tmp_path, optimizer: str, in_backward: object,
             library: str = "auto", amp: str | None = None) -> Trainer:
    config, loaded = data
    run = {**config, "optimizer": {"type": optimizer, "args": {"lr": LR, "weight_decay": 1e-4}},
           "lr_scheduler": {"type": "StepLR", "args": {"step_size": 1, "gamma": 0.9}},
           "trainer": {"epochs": 2, "save_dir": str(tmp_path), "tensorboard": False,
                       "monitor": "max val_t2v_metrics_R5", "cpu_matmul": library, "amp": amp},
           "data_loader": {**config["data_loader"],
                           "args": {**config["data_loader"]["args"], "batch_size": 8}}}
    if in_backward is not None:
        run["trainer"]["optimizer_in_backward"] = in_backward
    return trainer_for(run, tmp_path / f"{optimizer}-{in_backward}-{library}-{amp}", data=loaded)


#: float32 sums of the same terms in another order differ by a few units in the last place
LAST_PLACES = 1e-5


def _trained_alike(name: str, ours: torch.Tensor, theirs: torch.Tensor,
                   initial: torch.Tensor, share: float) -> str | None:
    """None when `ours` is within `share` of the distance training moved `theirs`, plus
    rounding at the tensor's own scale (per tensor, so the bound does not depend on the CPU's
    kernels), else what differed and where."""
    if not theirs.is_floating_point():
        return None if torch.equal(ours, theirs) else f"{name}: {ours} != {theirs}"
    moved = (theirs - initial).abs().max().item()
    bound = share * moved + LAST_PLACES * theirs.abs().max().item()
    gap = (ours - theirs).abs().flatten()
    worst = int(gap.argmax())
    if gap[worst].item() <= bound:
        return None
    return (f"{name}[{worst}] of shape {tuple(ours.shape)}: {ours.flatten()[worst].item():.9g} "
            f"against {theirs.flatten()[worst].item():.9g} (differs by {gap[worst].item():.3g}; "
            f"training moved the tensor by up to {moved:.3g}, the bound is {share:g} of that "
            f"plus {LAST_PLACES:g} of its largest value, {bound:.3g}; "
            f"{int((gap > bound).sum())} of {gap.numel()} elements beyond it)")


def _trained_differences(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor],
                         initial: dict[str, torch.Tensor]) -> list[str]:
    """What differs between two trainings that should end alike: each tensor within 5 % of
    how far training moved it (text projection weights, which row blocks update, 0.1 %);
    the batch-norm-fed biases, whose path is noise, within one learning rate."""
    noise = [name for name in theirs if BATCH_NORM_FED.search(name)]
    assert noise, "the model has no batch-norm-fed bias any more: update BATCH_NORM_FED"
    found = []
    for name, mine in ours.items():
        if name in noise:
            gap = (mine - theirs[name]).abs().max().item()
            found.append(None if gap <= LR else f"{name}: {gap:.3g} apart (noise bound {LR})")
            continue
        text_weight = "text_GU" in name and name.endswith(".fc.weight")
        found.append(_trained_alike(name, mine, theirs[name], initial[name],
                                    share=1e-3 if text_weight else 0.05))
    return [message for message in found if message]


@pytest.mark.parametrize(("optimizer", "library"), [
    ("RAdam", "torch"), ("Adam", "torch"), ("Ranger", "torch"), ("RAdam", "onednn"),
    ("RAdam", "auto")])
def test_training_with_the_step_in_backward_is_bit_identical(data, tmp_path, optimizer,
                                                              library):
    """Past RAdam's rectification onset (step 6), with weight decay and a scheduler, where
    one library computes every product both ways: torch's, or oneDNN's for RAdam (whose text
    projection gradients oneDNN computes a block of rows at a time), or each product by the
    library measured faster for it ("auto": a product's library is the same both ways)."""
    runs = [_trainer(data, tmp_path, optimizer, flag, library) for flag in (False, True)]
    histories = [run.train().history for run in runs]
    assert histories[0] == histories[1]
    assert same_nested(runs[0].model.state_dict(), runs[1].model.state_dict())
    assert same_nested(runs[0].optimizer.state_dict(), runs[1].optimizer.state_dict())
    assert all(p.grad is None for p in runs[1].model.parameters())


@pytest.mark.parametrize("optimizer", ["Adam", "Ranger"])
def test_with_onednn_the_step_in_backward_ends_where_stepping_after_ends(data, tmp_path,
                                                                         optimizer):
    """oneDNN writes only fresh memory, so in backward the text projections' gradients of
    optimizers without row updates come from torch's product into a recycled buffer: another
    library, so equal to rounding (which on some CPUs' kernels differs in the last bits)."""
    initial = _trainer(data, tmp_path, optimizer, False, "onednn").model.state_dict()
    runs = [_trainer(data, tmp_path, optimizer, flag, "onednn") for flag in (False, True)]
    for run in runs:
        run.train()
    differences = _trained_differences(runs[1].model.state_dict(), runs[0].model.state_dict(),
                                       initial)
    assert not differences, "\n".join(differences)


def test_the_setting_defaults_to_on_for_the_cpu_and_is_checked(data, tmp_path):
    assert _trainer(data, tmp_path, "RAdam", None).runtime.optimizer_in_backward
    assert not _trainer(data, tmp_path, "RAdam", False).runtime.optimizer_in_backward
    with pytest.raises(ConfigError, match="trainer.optimizer_in_backward"):
        _trainer(data, tmp_path, "RAdam", "yes")


def test_each_hook_steps_only_its_own_parameter():
    first, second = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([first, second], lr=0.5)
    step_during_backward(optimizer)
    (2 * first).sum().backward()
    assert first.grad is None and torch.equal(first.detach(), torch.zeros(3))
    assert torch.equal(second.detach(), torch.ones(3))


def test_the_hooks_do_not_keep_the_optimizer_alive():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([param], lr=0.1)
    step_during_backward(optimizer)
    freed = weakref.ref(optimizer)
    del optimizer
    assert freed() is None
    param.sum().backward()
    assert torch.equal(param.grad, torch.ones(3))


def test_the_projection_gradients_share_one_recycled_buffer(monkeypatch):
    """Each streamed layer's gradient is written into the buffer the previous one left
    (torch's products on both sides, so the values are the same bits on any CPU)."""
    monkeypatch.setattr(weight_gradients, "MIN_STREAMED_BYTES", 0)  # these layers are small
    buffers = GradientBuffers(min_kept_bytes=0)
    torch.manual_seed(0)
    layers = torch.nn.ModuleList(torch.nn.Linear(30, 50) for _ in range(4))
    reference = copy.deepcopy(layers)
    assert stream_weight_gradients(layers, buffers) == list(layers)
    addresses = []
    for layer in layers:
        layer.weight.register_post_accumulate_grad_hook(
            lambda param: addresses.append(param.grad.data_ptr()))
    params = [p for layer in layers for p in layer.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.1)
    step_during_backward(optimizer, buffers)
    plain = torch.optim.SGD([p for layer in reference for p in layer.parameters()], lr=0.1)
    for _ in range(2):
        x = torch.randn(6, 30, requires_grad=True)
        sum(out.square().sum() for out in shared_input_linear(x, layers)).backward()
        sum(out.square().sum() for out in shared_input_linear(x, reference)).backward()
        plain.step()
        plain.zero_grad(set_to_none=True)
    assert len(addresses) == 8
    assert len(set(addresses[:4])) == 1 and len(set(addresses[4:])) == 1
    for mine, theirs in zip(params, [p for layer in reference for p in layer.parameters()]):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)


def test_only_large_gradients_are_kept():
    small = torch.empty(4, 4)
    large = torch.empty(GradientBuffers.MIN_KEPT_BYTES // 4)
    buffers = GradientBuffers()
    buffers.give_back(small)
    buffers.give_back(large)
    assert buffers.take(small.shape, small.dtype, small.device) is not small
    assert buffers.take(large.shape, large.dtype, large.device) is large
    buffers.give_back(large)
    buffers.clear()
    assert buffers.take(large.shape, large.dtype, large.device) is not large


def test_the_runner_streams_the_large_layers_only_when_stepping_in_backward(data, tmp_path):
    """The text projections, and no smaller layer, write into the runner's buffers; the
    swap keeps the model's state dict keys; without stepping in backward nothing is swapped."""
    stepping = _trainer(data, tmp_path, "RAdam", True, "torch")
    streamed = {name for name, module in stepping.model.named_modules()
                if isinstance(module, StreamedLinear)}
    assert streamed == {f"ce.text_GU.{i}.fc" for i in range(len(stepping.model.modalities))}
    assert all(stepping.model.get_submodule(name).buffers is stepping.runner.buffers
               for name in streamed)
    plain = _trainer(data, tmp_path, "RAdam", False, "torch").model
    assert list(plain.state_dict()) == list(stepping.model.state_dict())
    assert all(type(module) is not StreamedLinear for module in plain.modules())


def test_a_layer_called_twice_in_a_step_is_not_updated_by_rows(monkeypatch):
    """Its gradient is the sum of both calls' products: each is returned to autograd (into
    a buffer), none goes to the update on its own."""
    monkeypatch.setattr(weight_gradients, "MIN_STREAMED_BYTES", 0)
    torch.manual_seed(0)
    layer = PlannedLinear(8, 5)
    offered = []
    buffers = GradientBuffers(min_kept_bytes=0)
    monkeypatch.setattr(buffers, "row_updates", lambda param: offered.append(param))
    stream_weight_gradients(layer, buffers)
    x = torch.randn(3, 8)
    (layer(x).sum() + layer(2 * x).sum()).backward()
    assert not offered
    torch.testing.assert_close(layer.weight.grad, 3 * x.sum(0).expand(5, 8))
    layer.weight.grad = None
    layer(x).sum().backward()  # one call: offered (and declined) row updates
    assert offered


def test_text_projections_are_updated_a_block_of_rows_at_a_time(data, tmp_path, monkeypatch):
    """With RAdam stepping in backward and blocks of one row, no text projection gradient is
    ever assembled (nothing is taken from the buffers), and training ends where stepping
    after backward ends, to rounding.

    One-row blocks sum products in another order, and how much that moves a weight depends on
    the CPU's vector units (on an Intel Xeon a batch-norm-fed bias ended 0.27 away in relative
    terms, failing rtol=1e-5). So each tensor is compared with the distance training moved it:
    a skipped or doubled update of a block is of the order of that distance, rounding stays
    far below 1 % of it with oneDNN's AVX2, AVX and SSE4.1 kernels."""
    monkeypatch.setattr(cpu_matmul, "WEIGHT_GRADIENT_BLOCK_BYTES", 1)  # one row per block
    taken = []
    monkeypatch.setattr(GradientBuffers, "take", lambda self, *a: taken.append(a))
    initial = _trainer(data, tmp_path, "RAdam", False, "onednn").model.state_dict()
    runs = [_trainer(data, tmp_path, "RAdam", flag, "onednn") for flag in (False, True)]
    for run in runs:
        run.train()
    assert not taken
    differences = _trained_differences(runs[1].model.state_dict(), runs[0].model.state_dict(),
                                       initial)
    assert not differences, "\n".join(differences)


def test_the_comparison_of_trained_weights_catches_a_missed_block():
    """The bound above fails when one row of a tensor did not move as training moved it."""
    initial = torch.zeros(4, 3)
    theirs = torch.full((4, 3), 0.01)
    ours = theirs.clone()
    ours[2] = 0.0  # the row whose update was skipped
    message = _trained_alike("w", ours, theirs, initial, share=0.05)
    assert message and "w[6]" in message and "3 of 12 elements" in message
    assert _trained_alike("w", theirs + 1e-5, theirs, initial, share=0.05) is None


def _count_recasts(monkeypatch) -> list[int]:
    """Count the times a kept low-precision copy is cast again from a changed weight."""
    recasts = []
    current = LowPrecisionCopy.current

    def counted(self, weight):
        if self.tensor is not None and self._version != weight._version:
            recasts.append(1)
        return current(self, weight)
    monkeypatch.setattr(LowPrecisionCopy, "current", counted)
    return recasts


def test_bf16_training_keeps_each_copy_current_without_casting_it_again(data, tmp_path,
                                                                        monkeypatch):
    """Under bf16 autocast the streamed text projections multiply by a kept bfloat16 copy
    that RAdam's row updates refresh: after two epochs each copy is its weight cast, bit for
    bit, and no step had to cast a weight again."""
    recasts = _count_recasts(monkeypatch)
    trainer = _trainer(data, tmp_path, "RAdam", True, amp="bf16")
    trainer.train()
    layers = [m for m in trainer.model.modules() if getattr(m, "low_copy", None) is not None]
    assert layers and all(m.low_copy.tensor is not None for m in layers)
    for layer in layers:
        assert torch.equal(layer.low_copy.tensor, layer.weight.detach().to(torch.bfloat16))
    assert not recasts


def test_bf16_training_with_kept_copies_ends_where_casting_every_step_ends(data, tmp_path,
                                                                           monkeypatch):
    """The copies change no number autocast computes, only where the cast comes from: the
    weights end within the bound of the other trainings compared here (each tensor within
    5 % of how far training moved it, the text projections within 0.1 %)."""
    initial = _trainer(data, tmp_path, "RAdam", True, amp="bf16").model.state_dict()
    kept = _trainer(data, tmp_path, "RAdam", True, amp="bf16")
    kept.train()
    monkeypatch.setattr(runners, "keep_low_precision_copies", lambda *args: None)
    cast = _trainer(data, tmp_path / "cast", "RAdam", True, amp="bf16")
    assert not any(getattr(m, "low_copy", None) for m in cast.model.modules())
    cast.train()
    differences = _trained_differences(kept.model.state_dict(), cast.model.state_dict(), initial)
    assert not differences, "\n".join(differences)


def test_a_kept_copy_follows_every_change_of_its_weight():
    """Cast again after any in-place change (an update elsewhere, a checkpoint loaded); after
    rows refreshed by their updater and `settled`, taken as it is."""
    layer = torch.nn.Linear(6, 4)
    copy = LowPrecisionCopy(torch.bfloat16)
    assert torch.equal(copy.current(layer.weight), layer.weight.detach().bfloat16())
    with torch.no_grad():
        layer.weight.mul_(3)
    assert torch.equal(copy.current(layer.weight), layer.weight.detach().bfloat16())
    layer.load_state_dict({"weight": torch.ones(4, 6), "bias": torch.zeros(4)})
    assert torch.equal(copy.current(layer.weight), torch.ones(4, 6, dtype=torch.bfloat16))
    with torch.no_grad():
        layer.weight[:2] += 1
    copy.refresh_rows(layer.weight, slice(0, 2))
    copy.tensor[3] = 0  # not refreshed: the updater vouches for the rows it changed
    copy.settled(layer.weight)
    kept = copy.current(layer.weight)
    assert torch.equal(kept[:2], torch.full((2, 6), 2.0, dtype=torch.bfloat16))
    assert torch.equal(kept[3], torch.zeros(6, dtype=torch.bfloat16))


def test_a_kept_copy_computes_what_autocast_computes_bit_for_bit(monkeypatch):
    """Forward (training and no-grad) and input gradient through the kept bfloat16 weight are
    autocast's own values: only where the bfloat16 weight comes from changes."""
    monkeypatch.setattr(weight_gradients, "MIN_STREAMED_BYTES", 0)
    torch.manual_seed(0)
    plain = torch.nn.Linear(40, 6)
    kept = copy.deepcopy(plain)
    streamed = stream_weight_gradients(kept, GradientBuffers(min_kept_bytes=0))
    weight_gradients.keep_low_precision_copies(streamed, torch.bfloat16)
    x = torch.randn(5, 40)
    outputs, gradients = [], []
    for layer in (plain, kept):
        leaf = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = layer(leaf)
            with torch.no_grad():
                outputs.append((out.detach(), layer(x)))
        out.float().square().sum().backward()
        gradients.append(leaf.grad)
    assert kept.low_copy.tensor is not None
    assert all(torch.equal(a, b) for a, b in zip(*outputs))
    assert torch.equal(*gradients)
