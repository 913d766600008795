"""Lesson 03 (initialization): the phenomena the notebook shows, with its configurations, for two seeds."""

import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import coursekit as ck
from coursekit.i18n import MESSAGES

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "en" / "03_initialization.ipynb"
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def data():
    return ck.load_data("fashion_mnist", n_train=10000, n_test=2000)


def tail_loss(history, n=30):
    return sum(history.loss[-n:]) / n


def fans(weight):
    receptive_field = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive_field, weight.shape[0] * receptive_field


def seed002_model(seed):
    torch.manual_seed(seed)
    net = ck.mlp(depth=1, width=128, activation="tanh")
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 1.0)
    return net


@pytest.mark.parametrize("seed", SEEDS)
def test_constant_init_keeps_all_hidden_units_identical(data, seed):
    X_train, y_train, X_test, _ = data
    torch.manual_seed(seed)
    zero = ck.mlp(depth=2, width=64, activation="tanh", init="zeros")
    const = ck.mlp(depth=2, width=64, activation="tanh")
    for layer in const.modules():
        if isinstance(layer, nn.Linear):
            nn.init.constant_(layer.weight, 0.05)
            nn.init.zeros_(layer.bias)
    runs = {n: ck.train(m, X_train, y_train, steps=100, lr=0.1, seed=seed, progress=False)
            for n, m in (("zero", zero), ("const", const))}
    for net in (zero, const):
        with ck.Monitor(net) as mon, torch.no_grad():
            net(X_test[:256])
        assert max((b.linear.weight - b.linear.weight[:1]).abs().max().item() for b in net.blocks) < 1e-6
        assert max((h - h[:, :1]).abs().max().item() for h in mon.last.values()) < 1e-6
    assert all(b.linear.weight.abs().max().item() == 0 for b in zero.blocks)
    assert abs(tail_loss(runs["zero"], 10) - math.log(10)) < 0.05
    assert tail_loss(runs["const"], 10) > 1.5  # one effective unit per layer: it barely learns


@pytest.mark.parametrize("seed", SEEDS)
def test_small_std_fades_and_larger_std_saturates_in_a_wide_6_layer_tanh_net(seed):
    stats, gains = {}, {}
    for std in (0.01, 0.05):
        torch.manual_seed(seed)
        net = ck.mlp(depth=6, width=2048, activation="tanh", init="normal", std=std, in_features=2048)
        with ck.Monitor(net) as mon, torch.no_grad():
            net(torch.randn(256, 2048, device=ck.get_device()))
        stats[std] = [s[-1] for s in mon.stats.values()]
        gains[std] = [std * math.sqrt(2048 * (1 - h ** 2).square().mean().item()) for h in mon.last.values()]
    small, large = stats[0.01], stats[0.05]
    assert small[-1]["std"] < small[0]["std"] / 20 and small[-1]["near_zero"] > 0.5
    assert min(s["saturated"] for s in large) > 0.15 and max(s["saturated"] for s in small) < 0.01
    assert max(gains[0.01]) < 0.6 and min(gains[0.05]) > 1  # the backward gain: below 1, and above 1 despite saturation


@pytest.mark.parametrize("seed", SEEDS)
def test_small_net_forgives_a_small_std_a_deep_one_does_not(data, seed):
    X_train, y_train, _, _ = data
    loss = {}
    for depth in (1, 6):
        torch.manual_seed(seed)
        net = ck.mlp(depth=depth, width=64, activation="tanh", init="normal", std=0.01)
        loss[depth] = tail_loss(ck.train(net, X_train, y_train, steps=200, lr=0.1, seed=seed, progress=False))
    assert loss[1] < 1.0 and loss[6] > 2.2


@pytest.mark.parametrize("seed", SEEDS)
def test_initial_loss_near_ln10_with_a_good_init_far_above_with_n01(data, seed):
    X_train, y_train, _, _ = data
    xb, yb = X_train[:256], y_train[:256]
    bad, fixed = seed002_model(seed), seed002_model(seed)
    with torch.no_grad():
        fixed.head.weight.mul_(0.01)
        fixed.head.bias.zero_()
        logits = bad(xb)
        assert F.cross_entropy(logits, yb).item() > 3 * math.log(10)
        assert logits.std().item() > 5 and logits.softmax(1).max(1).values.mean().item() > 0.5
        assert abs(F.cross_entropy(fixed(xb), yb).item() - math.log(10)) < 0.1
    bad_run = ck.train(bad, X_train, y_train, steps=300, lr=0.1, seed=seed, progress=False)
    fixed_run = ck.train(fixed, X_train, y_train, steps=300, lr=0.1, seed=seed, progress=False)
    assert sum(bad_run.loss[40:50]) / 10 < bad_run.loss[0] / 2  # the hockey stick
    assert tail_loss(bad_run) > 2 * tail_loss(fixed_run)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_hockey_stick_is_learning_to_rank_not_squashing_the_logits(data, seed):
    """Seed 002's N(0, 1) net, on the test set (seeds 0, 1): logit std 10.9 -> 9.6 -> 10.9 and 12.3 -> 10.2 -> 11.5,
    accuracy 8-10 % -> 45-49 % at step 50; the loss is within 5 % of (share wrong) x (mean margin of the wrong)."""
    X_train, y_train, X_test, y_test = data

    def report(model):
        with torch.no_grad():
            z = model(X_test)
        wrong = z.argmax(dim=1) != y_test
        margin = z.max(dim=1).values - z.gather(1, y_test[:, None]).squeeze(1)
        return z.std().item(), 1 - wrong.float().mean().item(), F.cross_entropy(z, y_test).item(), \
            wrong.float().mean().item() * margin[wrong].mean().item()

    net, trace, done = seed002_model(seed), {}, [0]
    trace[0] = report(net)

    def record(model):
        done[0] += 1
        if done[0] in (10, 25, 50, 100, 300):
            trace[done[0]] = report(model)

    ck.train(net, X_train, y_train, steps=300, lr=0.1, seed=seed, progress=False, monitor=False, after_step=record)
    assert all(0.75 < std / trace[0][0] < 1.25 for std, *_ in trace.values())
    assert trace[0][1] < 0.15 and trace[50][1] > 0.4
    assert all(abs(product / loss - 1) < 0.15 for _, _, loss, product in trace.values())


def test_large_logits_cost_their_margin():
    g = torch.Generator().manual_seed(0)
    z, labels = torch.randn(2000, 10, generator=g), torch.randint(0, 10, (2000,), generator=g)
    margin = (z.max(dim=1).values - z.gather(1, labels[:, None]).squeeze(1)).mean().item()
    assert F.cross_entropy(0.01 * z, labels).item() == pytest.approx(math.log(10), abs=0.01)
    assert F.cross_entropy(30 * z, labels).item() / (30 * margin) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("seed", SEEDS)
def test_n01_hidden_layer_is_saturated_and_fan_in_scaling_fixes_it(data, seed):
    X_train = data[0]
    bad, fixed = seed002_model(seed), seed002_model(seed)
    with torch.no_grad():
        fixed.blocks[0].linear.weight.div_(math.sqrt(784))
        fixed.blocks[0].linear.bias.zero_()
    share = {}
    for name, net in (("bad", bad), ("fixed", fixed)):
        with ck.Monitor(net) as mon, torch.no_grad():
            net(X_train[:64])
        share[name] = (mon.last["blocks.0.act"].abs() > 0.99).float().mean().item()
    assert share["bad"] > 0.8 and share["fixed"] < 0.05


@pytest.mark.parametrize("seed", SEEDS)
def test_xw_has_std_sqrt_k(seed):
    g = torch.Generator().manual_seed(seed)
    for k in (10, 100, 1000):
        x, w = torch.randn(1000, k, generator=g), torch.randn(k, 200, generator=g)
        assert abs((x @ w).std().item() / math.sqrt(k) - 1) < 0.05
        assert abs((x @ (w / math.sqrt(k))).std().item() - 1) < 0.05


@pytest.mark.parametrize("seed", SEEDS)
def test_hand_formulas_match_torch_nn_init_within_sampling_error(seed):
    torch.manual_seed(seed)
    schemes = {
        "lecun": (lambda w: 1 / math.sqrt(fans(w)[0]), lambda w: nn.init.kaiming_normal_(w, nonlinearity="linear")),
        "xavier": (lambda w: math.sqrt(2 / sum(fans(w))), nn.init.xavier_normal_),
        "kaiming": (lambda w: math.sqrt(2 / fans(w)[0]), lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")),
    }
    conv = nn.Conv2d(32, 64, kernel_size=3)
    assert fans(conv.weight) == (32 * 9, 64 * 9)
    assert fans(conv.weight) == nn.init._calculate_fan_in_and_fan_out(conv.weight)
    for layer in (nn.Linear(784, 256), conv):
        for formula, library_init in schemes.values():
            library_init(layer.weight)
            assert abs(layer.weight.std().item() / formula(layer.weight) - 1) < 0.03


@pytest.mark.parametrize("seed", SEEDS)
def test_pytorch_default_is_uniform_with_bound_one_over_sqrt_fan_in(seed):
    torch.manual_seed(seed)
    for layer in (nn.Linear(784, 256), nn.Conv2d(32, 64, kernel_size=3)):
        bound = 1 / math.sqrt(fans(layer.weight)[0])
        for name, p in layer.named_parameters():
            assert 0.9 * bound < p.abs().max().item() <= bound
        assert abs(layer.weight.std().item() / (bound / math.sqrt(3)) - 1) < 0.03


@pytest.mark.parametrize("seed", SEEDS)
def test_deep_tanh_net_xavier_trains_small_std_freezes(data, seed):
    X_train, y_train, _, _ = data
    runs = {}
    for name, init, std in (("xavier", "xavier", None), ("small", "normal", 0.05)):
        torch.manual_seed(seed)
        net = ck.mlp(depth=10, width=64, activation="tanh", init=init, std=std)
        runs[name] = ck.train(net, X_train, y_train, steps=300, lr=0.1, seed=seed, progress=False)
    assert tail_loss(runs["xavier"]) < 0.8 and tail_loss(runs["small"]) > 1.8
    ratios = {n: [sum(r) / len(r) for r in h.update_ratio.values()] for n, h in runs.items()}
    assert all(-3.5 < r < -1.5 for r in ratios["xavier"]) and ratios["small"][0] < -4.5


@pytest.mark.parametrize("seed", SEEDS)
def test_one_large_step_kills_relu_units_and_dead_units_get_no_gradient(data, seed):
    X_train, y_train, X_test, y_test = data

    def dead_units(net):
        with ck.Monitor(net) as mon, torch.no_grad():
            net(X_test[:1000])
        return [(h == 0).all(dim=0) for h in mon.last.values()]

    torch.manual_seed(seed)
    net = ck.mlp(depth=4, width=64, activation="relu", init="kaiming")
    before = torch.cat(dead_units(net)).float().mean().item()
    ck.train(net, X_train, y_train, steps=1, lr=2.0, seed=seed, progress=False)
    dead = dead_units(net)
    assert torch.cat(dead).float().mean().item() > 0.15 and before < 0.05
    net.zero_grad()
    F.cross_entropy(net(X_test[:1000]), y_test[:1000]).backward()
    for block, mask in zip(net.blocks, dead):
        assert (block.linear.weight.grad[mask] == 0).all()


def test_exercise_solutions_pass_their_self_checks_and_stubs_fail_without_raising(capsys):
    def random_weight(g):
        shape = torch.randint(1, 40, (2,), generator=g).tolist()
        if torch.rand(1, generator=g).item() < 0.5:
            shape += torch.randint(1, 6, (2,), generator=g).tolist()
        return torch.zeros(shape), int(torch.randint(0, 10**6, (1,), generator=g))

    def my_xavier_uniform_(weight, seed):
        fan_in, fan_out = fans(weight)
        a = math.sqrt(3) * math.sqrt(2 / (fan_in + fan_out))
        with torch.no_grad():
            return weight.uniform_(-a, a, generator=torch.Generator().manual_seed(seed))

    def leaky_kaiming_std(weight, slope):
        return math.sqrt(2 / (1 + slope ** 2)) / math.sqrt(fans(weight)[0])

    def stub(*args):
        raise NotImplementedError("your code here")

    torch_xavier = lambda weight, s: nn.init.xavier_uniform_(weight, generator=torch.Generator().manual_seed(s))
    torch_std = lambda weight, slope: nn.init.calculate_gain("leaky_relu", slope) / math.sqrt(fans(weight)[0])
    with_slope = lambda g: (random_weight(g)[0], torch.rand(1, generator=g).item())
    assert ck.check_function(my_xavier_uniform_, torch_xavier, random_weight)
    assert ck.check_function(leaky_kaiming_std, torch_std, with_slope)
    assert not ck.check_function(stub, torch_xavier, random_weight)
    assert not ck.check_function(stub, torch_std, with_slope)


def test_every_claim_key_of_the_notebook_has_an_english_text():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    keys = set(re.findall(r'"(l03_\w+)"', source)) | set(re.findall(r"'(l03_\w+)'", source))
    assert keys and keys <= set(MESSAGES["en"])
    checked = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) >= 10


def funnel_gains(variance, seed, widths=(1024, 512, 256, 128, 64, 32)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, widths[0], generator=g, requires_grad=True)
    h = x
    for fan_in, fan_out in zip(widths, widths[1:]):
        h = h @ (torch.randn(fan_in, fan_out, generator=g) * math.sqrt(variance(fan_in, fan_out)))
    h.retain_grad()
    (h * torch.randn(h.shape, generator=g)).sum().backward()
    return (h.std() / x.std()).item(), (x.grad.std() / h.grad.std()).item()


@pytest.mark.parametrize("seed", SEEDS)
def test_fan_in_keeps_the_forward_signal_fan_out_the_backward_one_and_xavier_lies_between(seed):
    """A funnel 1024 -> 32 halving its width: Var(h_l) = fan_in s^2 Var(h_l-1), Var(d_l-1) = fan_out s^2 Var(d_l)."""
    lecun = funnel_gains(lambda i, o: 1 / i, seed)
    fan_out = funnel_gains(lambda i, o: 1 / o, seed)
    xavier = funnel_gains(lambda i, o: 2 / (i + o), seed)
    assert abs(lecun[0] - 1) < 0.1 and abs(lecun[1] - 0.5 ** 2.5) < 0.03  # sqrt(1/2) per layer, 5 layers
    assert abs(fan_out[1] - 1) < 0.1 and abs(fan_out[0] / 2 ** 2.5 - 1) < 0.1
    assert lecun[1] < xavier[1] < fan_out[1] and lecun[0] < xavier[0] < fan_out[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_overfitting_one_small_batch_tells_a_working_init_from_a_blocked_one(data, seed):
    X_train, y_train = data[0], data[1]
    tiny_x, tiny_y = X_train[:20], y_train[:20]
    result = {}
    for name, options in {"xavier": dict(init="xavier"), "0.01": dict(init="normal", std=0.01),
                          "0.05": dict(init="normal", std=0.05)}.items():
        torch.manual_seed(seed)
        model = ck.mlp(depth=6, width=64, activation="tanh", **options)
        run = ck.train(model, tiny_x, tiny_y, steps=200, lr=0.1, batch_size=20, progress=False, monitor=False)
        result[name] = (run.final_loss, ck.evaluate(model, tiny_x, tiny_y))
    assert result["xavier"][0] < 0.05 and result["xavier"][1] == 1.0
    assert all(result[n][0] > 0.3 and result[n][1] < 0.9 for n in ("0.01", "0.05"))


def tanh_net(seed, init, depth):
    """A tanh net of width 64, each weight matrix drawn by `init` (a torch.nn.init function), biases 0."""
    torch.manual_seed(seed)
    net = ck.mlp(depth=depth, width=64, activation="tanh")
    for module in net.modules():
        if isinstance(module, nn.Linear):
            init(module.weight)
            nn.init.zeros_(module.bias)
    return net


@pytest.mark.parametrize("seed", SEEDS)
def test_the_tanh_gain_sweep_forward_and_backward(data, seed):
    """Karpathy's sweep: gain 1 fades on both sides, 5/3 keeps both, 3 saturates and the gradient grows."""
    X_train, y_train, _, _ = data
    summary = {}
    for gain in (1.0, 5 / 3, 3.0):
        net = tanh_net(seed, lambda w: nn.init.normal_(w, 0.0, gain / math.sqrt(w.shape[1])), depth=8)
        with ck.Monitor(net) as mon:
            F.cross_entropy(net(X_train[:512]), y_train[:512]).backward()
        h = list(mon.last.values())
        d = [mon.last_grad[name] for name in mon.last]
        rms = lambda t: t.pow(2).mean().sqrt().item()
        summary[gain] = (h[-1].std().item() / h[0].std().item(), rms(d[0]) / rms(d[-1]),
                         max(s[-1]["saturated"] for s in mon.stats.values()))
    one, five_thirds, three = summary.values()
    assert one[0] < 0.5 and one[1] < 0.7
    assert 0.75 < five_thirds[0] < 1.25 and 0.5 < five_thirds[1] < 3
    assert three[2] > 0.2 and three[1] > 4


@pytest.mark.parametrize("seed", SEEDS)
def test_the_deep_nets_gradient_at_init_predicts_which_init_trains(data, seed):
    X_train, y_train, _, _ = data
    ratio = lambda init: ck.diagnose(tanh_net(seed, init, depth=10), X_train[:512], y_train[:512]).ratio
    normal = lambda std: lambda w: nn.init.normal_(w, 0.0, std)
    assert ratio(normal(0.01)) < 1e-2 and ratio(normal(0.05)) < 1e-2
    assert ratio(normal(1.0)) > 3  # saturated, and the gradient still grows towards the input
    assert 0.1 < ratio(nn.init.xavier_normal_) < 3 and 0.1 < ratio(nn.init.kaiming_normal_) < 3


@pytest.mark.parametrize("seed", SEEDS)
def test_the_update_ratio_follows_the_learning_rate_and_minus_3_trains_well(data, seed):
    X_train, y_train, _, _ = data
    sweep = {}
    for lr in (0.003, 0.03, 0.3, 1.0):
        net = tanh_net(seed, nn.init.xavier_normal_, depth=10)
        history = ck.train(net, X_train, y_train, steps=150, lr=lr, seed=seed, progress=False)
        per_layer = [sum(r) / len(r) for r in history.update_ratio.values()]
        sweep[lr] = (sum(per_layer) / len(per_layer), max(per_layer), tail_loss(history, n=20))
    slow, good, fast, too_fast = sweep.values()
    assert all(0.6 < b[0] - a[0] < 1.4 for a, b in [(slow, good), (good, fast)])
    best = min(run[2] for run in sweep.values())
    assert abs(good[0] + 3) < 0.5 and good[2] < 1.2 * best and slow[2] > 1.5 * best
    assert too_fast[1] > -1 and too_fast[2] > 5
