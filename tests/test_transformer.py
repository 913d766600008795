"""coursekit's Transformer tools (lesson 06): the builder, the copy task, warmup, loss scaling and
autocast in ck.train, the float16 / bfloat16 gradients, and their argument checks."""

import math

import pytest
import torch
from torch import nn

import coursekit as ck


def test_builder_shapes_and_placement():
    X, y = ck.make_copy_task(16, seq_len=8, vocab=16, seed=0)
    assert X.shape == y.shape == (16, 8) and (y == X[:, :1]).all()
    for norm_first in (False, True):
        model = ck.transformer(depth=3, width=32, heads=4, norm_first=norm_first, seed=0)
        assert model(X).shape == (16, 8, 16) and len(model.blocks) == 3
        assert all(b.norm_first == norm_first for b in model.blocks)
        assert isinstance(model.final_norm, nn.LayerNorm if norm_first else nn.Identity)
    stream = []
    ck.transformer(depth=3, seed=0)(X, keep_stream=stream)
    assert len(stream) == 4


def test_seed_makes_the_same_model():
    a, b = ck.transformer(depth=2, seed=5), ck.transformer(depth=2, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_branch_inits():
    depth = 4
    gpt2 = ck.transformer(depth=depth, branch_init="gpt2", seed=0)
    stds = torch.stack([layer.weight.std() for layer in ck.branch_layers(gpt2)])
    assert torch.allclose(stds, torch.full_like(stds, 0.02 / math.sqrt(2 * depth)), rtol=0.1)
    zero = ck.transformer(depth=depth, branch_init="zero", seed=0)
    assert all((layer.weight == 0).all() and (layer.bias == 0).all() for layer in ck.branch_layers(zero))
    assert len(ck.branch_layers(zero)) == 2 * depth


def test_token_loss_and_accuracy():
    X, y = ck.make_copy_task(32, seed=0)
    model = ck.transformer(depth=1, seed=0)
    logits = model(X)
    assert ck.token_cross_entropy(logits, y).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits.reshape(-1, 16), y.reshape(-1)).item())
    accuracy = ck.evaluate(model, X, y)
    assert accuracy == pytest.approx((logits.argmax(-1) == y).float().mean().item())


def test_warmup_raises_the_learning_rate_linearly():
    X, y = ck.make_copy_task(256, seed=0)
    h = ck.train(ck.transformer(depth=1, seed=0), X, y, steps=12, lr=0.01, optimizer="adam", warmup=10,
                 loss_fn=ck.token_cross_entropy, monitor=False, progress=False)
    assert h.lr[:3] == pytest.approx([0.001, 0.002, 0.003]) and h.lr[9:] == pytest.approx([0.01] * 3)


def hand_scaler():
    class Scaler:  # GradScaler's five methods, nothing more: what ck.train asks of a scaler
        def __init__(self):
            self.S, self.calls = 2.0 ** 8, []

        def scale(self, loss):
            self.calls.append("scale")
            return loss * self.S

        def unscale_(self, optimizer):
            self.calls.append("unscale_")
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.div_(self.S)

        def step(self, optimizer):
            self.calls.append("step")
            optimizer.step()

        def update(self):
            self.calls.append("update")

        def get_scale(self):
            return self.S
    return Scaler()


def test_scaler_gives_the_unscaled_gradient_and_clips_after_unscaling():
    X, y = ck.make_copy_task(256, seed=0)
    common = dict(steps=5, lr=0.01, optimizer="adam", loss_fn=ck.token_cross_entropy, monitor=False, progress=False)
    plain = ck.train(ck.transformer(depth=2, seed=0), X, y, **common)
    scaler = hand_scaler()
    scaled = ck.train(ck.transformer(depth=2, seed=0), X, y, scaler=scaler, **common)
    assert scaled.grad_norm == pytest.approx(plain.grad_norm, rel=1e-4)
    assert scaler.calls[:4] == ["scale", "unscale_", "step", "update"]
    model = ck.transformer(depth=2, seed=0)
    ck.train(model, X, y, scaler=torch.amp.GradScaler("cpu"), clip=("norm", 0.01), **{**common, "steps": 1})
    assert torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item() == pytest.approx(0.01, rel=1e-3)


def test_grad_scaler_skips_overflowing_steps():
    X, y = ck.make_copy_task(256, seed=0)
    h = ck.train(ck.transformer(depth=2, seed=0), X, y, steps=20, lr=0.01, optimizer="adam", autocast=torch.float16,
                 scaler=torch.amp.GradScaler("cpu", init_scale=2.0 ** 30), loss_fn=ck.token_cross_entropy,
                 monitor=False, progress=False)
    assert h.skipped_steps[:1] == [0] and h.loss_scale[0] == 2.0 ** 29 and len(h.loss) == 20


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_trains(dtype):
    X, y = ck.make_copy_task(512, seed=0)
    h = ck.train(ck.transformer(depth=2, norm_first=True, seed=0), X, y, steps=60, lr=6e-3, optimizer="adam",
                 autocast=dtype, loss_fn=ck.token_cross_entropy, monitor=False, progress=False)
    assert not h.diverged and h.loss[-1] < h.loss[0]


def test_low_precision_gradient_leaves_the_model_alone():
    X, y = ck.make_copy_task(64, seed=0)
    model = ck.transformer(depth=2, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    reference = ck.full_precision_gradient(model, X, y, ck.token_cross_entropy)
    low = ck.low_precision_gradient(model, X, y, ck.token_cross_entropy, dtype="bfloat16")
    assert all(p.grad is None and p.dtype == torch.float32 and torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert low.dtype == torch.float32 and low.shape == reference.shape
    assert ((low - reference).norm() / reference.norm()).item() < 0.1


def test_lost_and_overflow_fractions():
    reference = torch.tensor([1e-9, 1e-3, 0.0, 1.0])
    low = reference.half().float()
    assert ck.lost_fraction(low, reference) == pytest.approx(1 / 3)
    assert ck.overflow_fraction(torch.tensor([1.0, math.inf, math.nan, 2.0])) == 0.5


@pytest.mark.parametrize("call, name", [
    (lambda: ck.transformer(depth=0), "depth"),
    (lambda: ck.transformer(width=30, heads=4), "width"),
    (lambda: ck.transformer(branch_init="xavier"), "branch_init"),
    (lambda: ck.make_copy_task(vocab=1), "vocab"),
    (lambda: ck.low_precision_gradient(ck.transformer(depth=1), *ck.make_copy_task(4), ck.token_cross_entropy, dtype="int8"), "dtype"),
    (lambda: ck.low_precision_gradient(ck.transformer(depth=1), *ck.make_copy_task(4), ck.token_cross_entropy, scale=0), "scale"),
])
def test_bad_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(warmup=-1), ValueError, "warmup"),
    (dict(scaler="yes"), TypeError, "scaler"),
    (dict(autocast=torch.float64), ValueError, "autocast"),
])
def test_train_checks_the_new_arguments(kwargs, error, name):
    X, y = ck.make_copy_task(64, seed=0)
    with pytest.raises(error, match=name):
        ck.train(ck.transformer(depth=1), X, y, steps=1, loss_fn=ck.token_cross_entropy, progress=False, **kwargs)
