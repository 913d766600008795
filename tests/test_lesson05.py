"""Lesson 05 (gradient clipping): the phenomena the notebook shows, with the notebook's own
configurations, checked for two seeds."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import coursekit as ck

SEEDS = (0, 1)
STEPS, LR = 300, 0.01


@pytest.fixture(scope="module")
def data():
    """The lesson's data: 10 000 training and 2 000 test images."""
    return ck.load_data("fashion_mnist", n_train=10000, n_test=2000)


def failing_model(seed, init="normal"):
    torch.manual_seed(seed)
    return ck.mlp(depth=4, width=64, activation="relu", init=init, std=1.0 if init == "normal" else None)


def clipped(g, clip_fn, *args, **kwargs):
    p = nn.Parameter(torch.zeros_like(g))
    p.grad = g.clone()
    clip_fn([p], *args, **kwargs)
    return p.grad


def angle(a, b):
    cos = (a @ b) / (a.norm() * b.norm())
    return math.degrees(math.acos(cos.clamp(-1, 1).item()))


def clip_by_norm(grads, max_norm):
    total_norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    clip_coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
    return [g * clip_coef for g in grads]


def seed004_clip(grads, max_norm):
    total_norm = sum(torch.sum(g * g) for g in grads)
    clip_coef = max_norm / (total_norm + 1e-6)
    return [g * clip_coef for g in grads]


def library_clip(grads, max_norm):
    params = [nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, grad in zip(params, grads):
        p.grad = grad.clone()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params]


def random_gradients(gen):
    scale = 10 ** (4 * torch.rand(1, generator=gen).item() - 2)
    max_norm = round(10 ** (2 * torch.rand(1, generator=gen).item() - 1), 3)
    return [torch.randn(5, 3, generator=gen) * scale, torch.randn(7, generator=gen) * scale], max_norm


def test_the_random_inputs_try_both_branches_of_clipping():
    gen = torch.Generator().manual_seed(0)  # as ck.check_function draws them
    cases = [random_gradients(gen) for _ in range(20)]
    below = sum(torch.sqrt(sum((g ** 2).sum() for g in grads)).item() < max_norm for grads, max_norm in cases)
    assert 0 < below < len(cases)


def test_a_check_that_hard_codes_max_norm_1_fails(capsys):
    hard_coded = lambda grads, max_norm: clip_by_norm(grads, 1.0)
    assert not ck.check_function(hard_coded, library_clip, random_gradients)


def test_2d_value_turns_norm_keeps_direction():
    g = torch.tensor([4.0, 1.0], dtype=torch.float64)
    by_value = clipped(g, torch.nn.utils.clip_grad_value_, 1.0)
    by_norm = clipped(g, torch.nn.utils.clip_grad_norm_, 1.0)
    assert by_value.tolist() == [1.0, 1.0]
    assert angle(g, by_value) == pytest.approx(math.degrees(math.atan2(1, 1) - math.atan2(1, 4)))
    assert angle(g, by_norm) < 0.01 and by_norm.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_norm_type_inf_keeps_direction():
    g = torch.tensor([4.0, 1.0], dtype=torch.float64)
    by_inf = clipped(g, torch.nn.utils.clip_grad_norm_, 1.0, norm_type=float("inf"))
    assert by_inf.abs().max().item() == pytest.approx(1.0, abs=1e-6)
    assert angle(g, by_inf) < 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_real_gradient_value_clipping_turns_it(data, seed):
    X_train, y_train, _, _ = data
    model = failing_model(seed)
    F.cross_entropy(model(X_train[:64]), y_train[:64]).backward()
    g = torch.cat([p.grad.flatten() for p in model.parameters()]).double().cpu()
    assert angle(g, clipped(g, torch.nn.utils.clip_grad_value_, 1.0)) > 30
    assert angle(g, clipped(g, torch.nn.utils.clip_grad_norm_, 1.0)) < 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_hand_written_clip_matches_library_and_seed004_does_not(seed, capsys):
    assert ck.check_function(clip_by_norm, library_clip, random_gradients, seed=seed)
    assert not ck.check_function(seed004_clip, library_clip, random_gradients, seed=seed)
    capsys.readouterr()


def test_seed004_inverts_the_norm():
    for n in [0.01, 0.1, 10.0, 100.0]:
        grads = [torch.tensor([0.6 * n, 0.8 * n], dtype=torch.float64)]
        seed_norm = seed004_clip(grads, 1.0)[0].norm().item()
        hand_norm = clip_by_norm(grads, 1.0)[0].norm().item()
        assert seed_norm == pytest.approx(1.0 / n, rel=0.02)
        assert hand_norm == pytest.approx(min(n, 1.0), rel=1e-4)


@pytest.mark.parametrize("seed", SEEDS)
def test_clipping_keeps_the_exploding_run_finite(data, seed):
    X_train, y_train, X_test, y_test = data
    unclipped = ck.train(failing_model(seed), X_train, y_train, steps=STEPS, lr=LR, progress=False, monitor=False, seed=seed)
    assert unclipped.diverged and unclipped.stop_step < 10

    healthy_model = failing_model(seed, "kaiming")
    healthy = ck.train(healthy_model, X_train, y_train, steps=STEPS, lr=LR, progress=False, monitor=False, seed=seed)
    threshold = float(f"{torch.tensor(healthy.grad_norm).quantile(0.9):.2g}")

    model = failing_model(seed)
    clipped_run = ck.train(model, X_train, y_train, steps=STEPS, lr=LR, clip=("norm", threshold), progress=False,
                           monitor=False, seed=seed)
    assert not clipped_run.diverged and len(clipped_run.loss) == STEPS
    assert (torch.tensor(clipped_run.grad_norm) > threshold).float().mean() > 0.9

    insured_model = failing_model(seed, "kaiming")
    insured = ck.train(insured_model, X_train, y_train, steps=STEPS, lr=LR, clip=("norm", threshold), progress=False,
                       monitor=False, seed=seed)
    assert (torch.tensor(insured.grad_norm) > threshold).float().mean() < 0.25
    assert abs(ck.evaluate(healthy_model, X_test, y_test) - ck.evaluate(insured_model, X_test, y_test)) < 0.03


@pytest.mark.parametrize("seed", SEEDS)
def test_threshold_sweep(data, seed):
    X_train, y_train, X_test, y_test = data
    accuracy, dead = {}, {}
    for c in [1, 30, 1000]:
        model = failing_model(seed)
        h = ck.train(model, X_train, y_train, steps=STEPS, lr=LR, clip=("norm", c), progress=False, seed=seed)
        assert not h.diverged
        accuracy[c] = ck.evaluate(model, X_test, y_test)
        dead[c] = max(stats[-1]["dead"] for stats in h.act_stats.values())
    assert accuracy[1] < 0.4  # 16 - 32 % over seeds 0-5, on scalar and AVX2 kernels
    assert accuracy[30] > 0.5
    assert accuracy[1000] < 0.2 and dead[1000] > 0.75


@pytest.mark.parametrize("seed", SEEDS)
def test_clipping_saves_a_healthy_net_from_a_rare_spike(data, seed):
    """Kaiming at lr=0.5: unclipped it diverges (seeds 0, 1, 3, 4, 5; seed 2 survives), clipped at the healthy
    90th percentile it clips 2-4 % of its steps and reaches 70-75 % (seeds 0-4, both kernels)."""
    X_train, y_train, X_test, y_test = data
    healthy = ck.train(failing_model(seed, "kaiming"), X_train, y_train, steps=STEPS, lr=LR, progress=False,
                       monitor=False, seed=seed)
    threshold = float(f"{torch.tensor(healthy.grad_norm).quantile(0.9):.2g}")
    unclipped = ck.train(failing_model(seed, "kaiming"), X_train, y_train, steps=STEPS, lr=0.5, progress=False,
                         monitor=False, seed=seed)
    model = failing_model(seed, "kaiming")
    clipped_run = ck.train(model, X_train, y_train, steps=STEPS, lr=0.5, clip=("norm", threshold), progress=False,
                           monitor=False, seed=seed)
    assert unclipped.diverged
    assert not clipped_run.diverged and (torch.tensor(clipped_run.grad_norm) > threshold).float().mean() < 0.1
    assert ck.evaluate(model, X_test, y_test) > 0.6


def test_clip_grad_norm_returns_the_norm_before_clipping():
    p = nn.Parameter(torch.zeros(3))
    p.grad = torch.tensor([3.0, 4.0, 12.0])
    total = torch.nn.utils.clip_grad_norm_([p], 1.0)
    assert total.item() == pytest.approx(13.0)
    assert p.grad.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_nonfinite_gradient():
    p = nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([math.inf, 1.0])
    assert math.isinf(torch.nn.utils.clip_grad_norm_([p], 1.0).item())
    assert math.isnan(p.grad[0].item()) and p.grad[1].item() == 0.0
    p.grad = torch.tensor([math.inf, 1.0])
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    p.grad = torch.tensor([math.nan, 1.0])
    assert math.isnan(torch.nn.utils.clip_grad_norm_([p], 1.0).item()) and p.grad.isnan().all()
    p.grad = torch.tensor([math.nan, 1.0])
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_clipping_before_backward_clips_nothing(data):
    X_train, y_train, _, _ = data
    model = failing_model(0)
    model.zero_grad(set_to_none=True)
    assert torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0).item() == 0.0
    F.cross_entropy(model(X_train[:64]), y_train[:64]).backward()
    assert torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item() > 5.0


@pytest.mark.parametrize("seed", SEEDS)
def test_clipped_run_matches_a_hand_clipped_loop(data, seed):
    """ck.train(clip=("norm", c)) clips exactly like clip_grad_norm_ between backward() and step():
    a hand loop over the same batches, clipping with the hand-written clip_by_norm, ends at the same weights."""
    X_train, y_train, _, _ = data
    steps, c = 20, 5.0
    trained = failing_model(seed)
    ck.train(trained, X_train, y_train, steps=steps, lr=LR, clip=("norm", c), progress=False, monitor=False, seed=seed)

    model = failing_model(seed)
    params = list(model.parameters())
    order = torch.randperm(len(X_train), generator=torch.Generator().manual_seed(seed))
    for step in range(steps):
        idx = order[step * 64:(step + 1) * 64]
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(X_train[idx]), y_train[idx]).backward()
        with torch.no_grad():
            for p, g in zip(params, clip_by_norm([p.grad for p in params], c)):
                p -= LR * g
    for a, b in zip(trained.parameters(), params):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
