"""Lesson 06 (Transformers and mixed precision): the phenomena the notebook shows, with the
notebook's own configurations, checked for two seeds."""

import copy
import math

import pytest
import torch

import coursekit as ck

SEEDS = (0, 1)
LR, STEPS = 6e-3, 300


@pytest.fixture(scope="module")
def task():
    return ck.make_copy_task(2048, seed=0), ck.make_copy_task(1024, seed=1)


def run(task, seed, norm_first, warmup=0, **options):
    (X, y), (X_test, y_test) = task
    branch_init = options.pop("branch_init", "default")
    model = ck.transformer(depth=8, width=32, norm_first=norm_first, branch_init=branch_init, seed=seed)
    h = ck.train(model, X, y, steps=STEPS, lr=LR, batch_size=32, optimizer="adam", warmup=warmup,
                 loss_fn=ck.token_cross_entropy, monitor=False, seed=seed, progress=False, **options)
    return h, ck.evaluate(model, X_test, y_test)


@pytest.mark.parametrize("seed", SEEDS)
def test_post_ln_needs_warmup_pre_ln_does_not(task, seed):
    post, post_accuracy = run(task, seed, norm_first=False)
    _, warm_accuracy = run(task, seed, norm_first=False, warmup=150)
    _, pre_accuracy = run(task, seed, norm_first=True)
    assert abs(sum(post.loss[-20:]) / 20 - math.log(16)) < 0.15 and post_accuracy < 0.2
    assert warm_accuracy > 0.9 and pre_accuracy > 0.9


@pytest.mark.parametrize("seed", SEEDS)
def test_branch_init_rescues_post_ln_and_clipping_does_not(task, seed):
    """Exercise 3's answer: clipping cannot shorten Adam's steps; a near-identity block can't collapse the stream."""
    assert run(task, seed, norm_first=False, branch_init="zero")[1] > 0.9
    assert run(task, seed, norm_first=False, clip=("norm", 1.0))[1] < 0.2


@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_at_init_by_depth(task, seed):
    (X, y), _ = task

    def block_grads(model):
        ck.token_cross_entropy(model(X[:256]), y[:256]).backward()
        return [math.sqrt(sum(p.grad.pow(2).sum().item() for p in b.parameters())) for b in model.blocks]

    post = {d: block_grads(ck.transformer(depth=d, norm_first=False, seed=seed)) for d in (2, 4, 8, 12)}
    pre = {d: block_grads(ck.transformer(depth=d, norm_first=True, seed=seed)) for d in (2, 12)}
    assert all(0.5 < g[-1] / g[0] < 2 for g in post.values())
    assert pre[12][-1] < 0.7 * pre[2][-1] and pre[12][-1] < 0.5 * pre[12][0] and post[12][-1] > 2 * pre[12][-1]


@pytest.mark.parametrize("seed", SEEDS)
def test_stream_growth_and_branch_inits(task, seed):
    (X, _), _ = task
    growth = {}
    for branch_init in ck.tinytransformer.BRANCH_INITS:
        stream = []
        with torch.no_grad():
            ck.transformer(depth=12, norm_first=True, branch_init=branch_init, seed=seed)(X[:256], keep_stream=stream)
        growth[branch_init] = stream[-1].std().item() / stream[0].std().item()
    assert growth["default"] > 3 and abs(growth["gpt2"] - 1) < 0.1 and abs(growth["zero"] - 1) < 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_float16_loses_a_late_gradient_and_scaling_recovers_it(task, seed):
    (X, y), (X_test, y_test) = task
    model = ck.transformer(depth=8, norm_first=True, seed=seed)
    ck.train(model, X, y, steps=STEPS, lr=LR, batch_size=32, optimizer="adam", loss_fn=ck.token_cross_entropy,
             monitor=False, seed=seed, progress=False)
    batch = (X_test[:256], y_test[:256])
    reference = ck.full_precision_gradient(model, *batch, loss_fn=ck.token_cross_entropy)
    low = lambda dtype, scale: ck.low_precision_gradient(model, *batch, loss_fn=ck.token_cross_entropy, dtype=dtype, scale=scale)
    fp16 = ck.lost_fraction(low("float16", 1.0), reference)
    assert fp16 > 0.3 and fp16 > 2 * ck.lost_fraction(reference.half(), reference)
    assert ck.lost_fraction(low("bfloat16", 1.0), reference) < 0.001
    assert ck.lost_fraction(low("float16", 2.0 ** 10), reference) < 0.01
    assert ck.overflow_fraction(low("float16", 2.0 ** 32)) > 0


def random_qkv(g):
    d_k, d_v = torch.randint(1, 40, (2,), generator=g).tolist()
    return torch.randn(2, 5, d_k, generator=g), torch.randn(2, 7, d_k, generator=g), torch.randn(2, 7, d_v, generator=g)


def library_update(scale, found_inf, good_steps, growth_interval):
    scale_t, tracker = torch.tensor([scale]), torch.tensor([good_steps], dtype=torch.int32)
    torch._amp_update_scale_(scale_t, tracker, torch.tensor([float(found_inf)]), 2.0, 0.5, growth_interval)
    return scale_t.item(), tracker.item()


def random_state(g):
    return (2.0 ** int(torch.randint(0, 24, (1,), generator=g)), bool(torch.randint(0, 2, (1,), generator=g)),
            int(torch.randint(0, 3, (1,), generator=g)), int(torch.randint(1, 4, (1,), generator=g)) + 2)


def test_exercise_checks_accept_the_solutions_and_reject_slips(capsys):
    def my_attention(q, k, v):
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v

    def unscaled_attention(q, k, v):
        return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v

    def update_scale(scale, found_inf, good_steps, growth_interval):
        if found_inf:
            return scale / 2, 0
        good_steps += 1
        if good_steps == growth_interval:
            return scale * 2, 0
        return scale, good_steps

    def never_resets(scale, found_inf, good_steps, growth_interval):
        return (scale / 2, good_steps) if found_inf else update_scale(scale, found_inf, good_steps, growth_interval)

    sdpa = torch.nn.functional.scaled_dot_product_attention
    assert ck.check_function(my_attention, sdpa, random_qkv)
    assert not ck.check_function(unscaled_attention, sdpa, random_qkv)
    assert ck.check_function(update_scale, library_update, random_state, trials=50)
    assert not ck.check_function(never_resets, library_update, random_state, trials=50)
