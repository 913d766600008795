"""coursekit's diagnostics on models the lessons never use: the verdict of `ck.diagnose` for a table of
configurations, each derived from first principles; what diagnose leaves behind (nothing); the Monitor.

The rule under test (coursekit/diagnostics.py): the back-propagated signal dL/dh is measured at every
layer's output in the order the layers run; R = RMS at the first hidden layer / RMS at the last one
(embeddings and the head left out; in a recurrent model, dL/dx_t at step 1 / at step T).
R < 1/100 vanishing, < 1/3 mild vanishing, > 3 mild exploding, > 100 exploding, else healthy.

Mean field: through a layer of width n with weights of std sigma_w, the signal changes by the gain
g = sigma_w * sqrt(n * E[phi'(z)^2]), so over L compared layers R ~ g^(L-1). Useful values:
PyTorch's default init U(-1/sqrt(n), 1/sqrt(n)) has sigma_w * sqrt(n) = 1/sqrt(3) = 0.58; Xavier
(equal fans) 1; Kaiming sqrt(2). E[phi'^2] is 1 for the identity, 1/2 for ReLU, at most 1/16 for the
sigmoid (sigma' <= 1/4), close to 1 for tanh near 0 and much less once it saturates.
"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import coursekit as ck
import zoo

HEALTHY, MILD_V, VANISHING, MILD_E, EXPLODING = "healthy", "mild vanishing", "vanishing", "mild exploding", "exploding"


def mlp(**options):
    return lambda: ck.mlp(width=64, **options)


def frozen_first_two():
    model = ck.mlp(depth=8, width=64, activation="relu", init="kaiming")
    for block in model.blocks[:2]:
        block.requires_grad_(False)
    return model


# (id, build the model, which data, the verdicts theory allows, why)
CASES = [
    # --- MLPs
    ("sigmoid-8-xavier", mlp(depth=8, activation="sigmoid", init="xavier"), "images", {VANISHING},
     "g = 1 * sqrt(E[s'^2]) <= 1/4 per layer: R ~ 0.23^7 = 3e-5"),
    ("sigmoid-10-default", mlp(depth=10, activation="sigmoid"), "images", {VANISHING},
     "g = 0.58 * 1/4 = 0.15: R ~ 0.15^9 = 4e-8"),
    ("sigmoid-4-normal1 (seed 003)", mlp(depth=4, activation="sigmoid", init="normal", std=1.0), "images", {MILD_V},
     "sigma_w sqrt(n) = 8, but layer 1 sums 784 pixels (z std ~ 28) and is ~90% saturated: g ~ 0.4 into layer 1, "
     "~0.8 elsewhere: R ~ 0.3, the first layer learns a few times slower"),
    ("tanh-20-normal1", mlp(depth=20, activation="tanh", init="normal", std=1.0), "images", {EXPLODING},
     "sigma_w sqrt(n) = 8; saturation leaves E[tanh'^2] ~ 0.07: g ~ 2, R ~ 2^19 = 5e5"),
    ("tanh-10-normal0.05", mlp(depth=10, activation="tanh", init="normal", std=0.05), "images", {VANISHING},
     "sigma_w sqrt(n) = 0.4, tanh' ~ 1 near 0: R ~ 0.4^9 = 3e-4 (lesson 03's failing net)"),
    ("tanh-10-normal0.01", mlp(depth=10, activation="tanh", init="normal", std=0.01), "images", {VANISHING},
     "g = 0.08: R ~ 1e-10"),
    ("tanh-20-xavier", mlp(depth=20, activation="tanh", init="xavier"), "images", {MILD_V},
     "g = sqrt(E[tanh'^2]) slightly below 1; the activations' variance q_l shrinks like 1/l, so "
     "prod(1 - q_l) ~ 1/L and R ~ L^(-1/2) = 0.2: mild, a power law, not exponential"),
    ("tanh-10-kaiming", mlp(depth=10, activation="tanh", init="kaiming"), "images", {HEALTHY},
     "sigma_w sqrt(n) = sqrt(2) and tanh' < 1 meet at a fixed point with g ~ 1"),
    ("relu-8-kaiming", mlp(depth=8, activation="relu", init="kaiming"), "images", {HEALTHY},
     "g = sqrt(2) * sqrt(1/2) = 1"),
    ("relu-8-default", mlp(depth=8, activation="relu"), "images", {VANISHING},
     "g = 0.58 * sqrt(1/2) = 0.41: R ~ 0.41^7 = 2e-3"),
    ("relu-3-default (shallow)", mlp(depth=3, activation="relu"), "images", {MILD_V},
     "R ~ 0.41^2 = 0.17"),
    ("relu-4-normal1 (lesson 01)", mlp(depth=4, activation="relu", init="normal", std=1.0), "images", {EXPLODING},
     "g = 8 * sqrt(1/2) = 5.7: R ~ 5.7^3 = 180"),
    ("leaky-relu-8-kaiming", mlp(depth=8, activation="leaky_relu", init="kaiming"), "images", {HEALTHY},
     "g = sqrt(2) * sqrt((1 + 0.01^2)/2) = 1"),
    ("identity-32-default", mlp(depth=32, activation="identity"), "images", {VANISHING},
     "no activation at all: g = 0.58, R ~ 0.58^31 = 5e-8 (depth alone)"),
    ("sigmoid-1 (one hidden layer)", mlp(depth=1, activation="sigmoid", init="xavier"), "images", {HEALTHY},
     "one hidden layer: no depth to vanish through"),
    # --- residual and normalised
    ("relu-8-kaiming-residual", mlp(depth=8, activation="relu", init="kaiming", residual=True), "images", {MILD_E},
     "x + F(x) with a Kaiming-sized F doubles the variance per block; backward (I + J) gains ~sqrt(2): R ~ 1.4^7 = 11"),
    ("sigmoid-8-xavier-residual", mlp(depth=8, activation="sigmoid", init="xavier", residual=True), "images", {HEALTHY},
     "I + J with a small J (sigma' <= 1/4): the identity path carries the signal, g ~ 1.1"),
    ("sigmoid-10-batchnorm", mlp(depth=10, activation="sigmoid", norm="batch"), "images", {HEALTHY},
     "BatchNorm divides by the batch std, undoing sigma_w * sqrt(n) * std(h): g ~ 0.9"),
    # --- CNNs (F.relu / torch.tanh in forward)
    ("cnn-12-relu-default", lambda: zoo.CNN(depth=12), "images", {VANISHING},
     "Conv2d's default init has sigma_w sqrt(fan_in) = 0.58, ReLU halves: g = 0.41, R ~ 0.41^10 = 1e-4"),
    ("cnn-12-relu-kaiming", lambda: zoo.CNN(depth=12, init="kaiming"), "images", {HEALTHY},
     "Kaiming: g = 1"),
    ("cnn-4-relu-default", lambda: zoo.CNN(depth=4), "images", {MILD_V}, "4 convolutions compared: R ~ 0.41^3 = 0.07"),
    ("cnn-12-tanh-default", lambda: zoo.CNN(depth=12, activation=torch.tanh), "images", {VANISHING},
     "g = 0.58 * sqrt(E[tanh'^2]) ~ 0.55: R ~ 3e-3"),
    # --- recurrent (verdict over time: dL/dx_t, step 1 vs step T)
    ("rnn-tanh-50", lambda: ck.rnn_classifier("rnn", hidden=32), "seq50", {VANISHING},
     "W_hh default: sigma sqrt(H) = 0.58, tanh' <= 1: per step <= 0.58, R ~ 0.58^49 = 1e-12"),
    ("rnn-relu-gain1.8-100", lambda: ck.rnn_classifier("rnn", hidden=32, nonlinearity="relu", recurrent_scale=1.8),
     "seq100", {EXPLODING}, "W_hh with singular values 1.8, ReLU keeps ~half: per step ~1.8/sqrt(2) = 1.27, R ~ 1e10"),
    ("lstm-50", lambda: ck.rnn_classifier("lstm", hidden=32), "seq50", {VANISHING},
     "forget gate sigma(b ~ 0) = 1/2 per step along the cell: R ~ 0.5^49"),
    ("lstm-50-forget-bias-3", lambda: zoo.Recurrent("lstm", hidden=32, forget_bias=3.0), "seq50", {MILD_V, HEALTHY, MILD_E},
     "sigma(3) = 0.95 per step along the cell: 0.95^49 = 0.08 on that path, and the paths through the gates add to "
     "it: no failing trend (lesson 02 measures 0.1 to 5 across seeds)"),
    ("gru-50", lambda: ck.rnn_classifier("gru", hidden=32), "seq50", {VANISHING}, "update gate ~1/2 per step"),
    ("gru-50-time-major", lambda: zoo.Recurrent("gru", hidden=32, batch_first=False), "seq50-time-major", {VANISHING},
     "the same GRU with its input laid out (time, batch): the layout is read from batch_first"),
    ("lstm-tokens", lambda: zoo.Recurrent("lstm", vocab=10), "tokens30", {VANISHING},
     "token ids through an embedding: dL/dx_t is measured at the LSTM's input; gate ~1/2 per step"),
    ("gru-packed", lambda: zoo.Recurrent("gru", packed=True), "seq40", {VANISHING},
     "packed sequences (lengths 40 and 20): per-step rows of the packed data"),
    ("lstm-time-major-tokens", lambda: zoo.Recurrent("lstm", vocab=10, batch_first=False), "tokens30-time-major",
     {VANISHING}, "token ids laid out (time, batch)"),
    # --- Transformer encoders: residual streams with LayerNorm, no exponential trend at init
    *[(f"transformer-{layers}-{'pre' if pre else 'post'}-ln", (lambda layers=layers, pre=pre: zoo.Transformer(layers, norm_first=pre)),
       "tokens12", {HEALTHY, MILD_V, MILD_E},
       "every block adds I + J to the backward product, and LayerNorm keeps J = O(1): no exponential trend, "
       "at most a mild one over 12 blocks")
      for layers in (2, 6, 12) for pre in (True, False)],
    # --- awkward models
    ("head-defined-first", lambda: zoo.HeadFirst(), "images", {VANISHING},
     "a 10-layer sigmoid net with N(0, 0.05): g ~ 0.4 * 1/4: the order the layers run decides, not __init__"),
    ("frozen-first-two", frozen_first_two, "images", {HEALTHY},
     "relu-8-kaiming with blocks 0-1 frozen: the signal is measured through them anyway, g = 1"),
    ("shared-tanh-x4", lambda: zoo.Shared(), "images", {MILD_V},
     "one default-init Linear called 4 times: g ~ 0.55 per call, R ~ 0.55^3 = 0.17 over its 4 calls"),
    ("functional-relu-8-kaiming", lambda: zoo.FunctionalMLP(init="kaiming"), "images", {HEALTHY}, "F.relu, Kaiming: g = 1"),
    ("functional-relu-8-default", lambda: zoo.FunctionalMLP(init="default"), "images", {VANISHING},
     "F.relu, default init: g = 0.41"),
    ("tied-embedding", lambda: zoo.TiedLanguageModel(), "tokens12-20", {MILD_V, HEALTHY},
     "4 default-init tanh layers: g ~ 0.55, R ~ 0.55^3 = 0.17 (mild) at most"),
    ("float64-relu-6-kaiming", lambda: ck.mlp(depth=6, width=64, activation="relu", init="kaiming").double(), "images",
     {HEALTHY}, "float32 data is cast to the model's float64"),
    ("batchnorm-eval-mode", lambda: ck.mlp(depth=10, width=64, activation="sigmoid", norm="batch").eval(), "images",
     {HEALTHY}, "diagnose runs a training-mode copy: the same verdict as sigmoid-10-batchnorm"),
]


@pytest.fixture(scope="module")
def data(fashion):
    X, y = fashion[0][:256], fashion[1][:256]
    seq = {T: ck.make_sequence_task(n=128, length=T, seed=0) for T in (40, 50, 100)}
    g = torch.Generator().manual_seed(0)
    tokens = {T: torch.randint(0, 10, (128, T), generator=g) for T in (12, 30)}
    return {
        "images": (X, y), "seq40": seq[40], "seq50": seq[50], "seq100": seq[100],
        "seq50-time-major": (seq[50][0].transpose(0, 1).contiguous(), seq[50][1]),
        "tokens12": (tokens[12], tokens[12][:, 0]), "tokens12-20": (tokens[12], tokens[12][:, 0]),
        "tokens30": (tokens[30], (tokens[30][:, 0] > 4).long()),
        "tokens30-time-major": (tokens[30].T.contiguous(), (tokens[30][:, 0] > 4).long()),
    }


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_verdict_on_a_configuration(case, data, seed=0):
    name, build, which, expected, why = case
    torch.manual_seed(seed)
    verdict = ck.diagnose(build(), *data[which])
    assert verdict.kind in expected, f"{name}: {verdict}  (theory: {why})"


def test_the_table_is_large_enough():
    assert len(CASES) >= 30


def test_verdict_names_the_layers_it_compared_in_execution_order(data):
    torch.manual_seed(0)
    verdict = ck.diagnose(zoo.HeadFirst(), *data["images"])
    assert verdict.layers == ("body.0", "body.18") and list(verdict.norms)[0] == "body.0"
    assert "body.0" in verdict.text and "body.18" in verdict.text
    table = verdict.table().splitlines()
    assert table[1].startswith("body.0") and table[-1].startswith("head")


def test_a_module_called_four_times_counts_four_times(data):
    verdict = ck.diagnose(zoo.Shared(), *data["images"])
    assert verdict.layers == ("mid", "mid#4") and list(verdict.norms) == ["inp", "mid", "mid#2", "mid#3", "mid#4"]
    assert "unused" not in verdict.table()


def test_transformer_compares_like_with_like(data):
    verdict = ck.diagnose(zoo.Transformer(6), *data["tokens12"])
    assert verdict.layers == ("encoder.layers.0.self_attn", "encoder.layers.5.self_attn")


def test_rules_for_zeros_nan_and_the_levels():
    assert ck.verdict({"a": 1e-6, "b": 1e-1}).kind == VANISHING
    assert ck.verdict({"a": 0.02, "b": 1e-1}).kind == MILD_V
    assert ck.verdict({"a": 10.0, "b": 1.0}).kind == MILD_E
    assert ck.verdict({"a": 1e5, "b": 1e2}).kind == EXPLODING
    assert ck.verdict({"a": 1e-6, "b": 2e-6}).kind == HEALTHY  # the size of a gradient is not a trend
    assert ck.verdict({"a": 0.1, "b": math.nan}).kind == EXPLODING
    zero = ck.verdict({"a": 0.0, "b": 0.0, "c": 1e-3})
    assert zero.kind == VANISHING and "b" in zero.text and zero.ratio == 0
    all_zero = ck.verdict({"a": 0.0, "b": 0.0})
    assert all_zero.kind == VANISHING and not math.isinf(all_zero.ratio)  # 0/0 is never inf
    assert ck.verdict([1e-9, 1e-3, 1.0], steps=True, layer="rnn").kind == VANISHING
    with pytest.raises(ValueError, match="no gradients"):
        ck.verdict({})


def test_an_output_the_loss_does_not_use_is_left_out_not_nan(data):
    class SideBranch(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = ck.mlp(depth=4, width=32, activation="relu", init="kaiming")
            self.probe = nn.Linear(784, 3)  # runs, but its output never reaches the loss

        def forward(self, x):
            self.probe(x)
            return self.net(x)

    verdict = ck.diagnose(SideBranch(), *data["images"])
    assert verdict.kind == HEALTHY and "probe" not in verdict.norms


def test_a_fully_dead_relu_net_is_vanishing_not_exploding(data):
    model = ck.mlp(depth=4, width=32, activation="relu", init="kaiming")
    with torch.no_grad():
        model.blocks[1].linear.weight.abs_().neg_()
        model.blocks[1].linear.bias.fill_(-1.0)
    verdict = ck.diagnose(model, *data["images"])
    assert verdict.kind == VANISHING and "no gradient reaches" in verdict.text


def test_an_all_zero_init_has_no_gradient_and_says_so(data):
    model = ck.mlp(depth=4, width=32, activation="relu", init="zeros")
    assert ck.diagnose(model, *data["images"]).kind == VANISHING


def test_nan_weights_are_exploding(data):
    model = ck.mlp(depth=4, width=32, activation="relu", init="kaiming")
    with torch.no_grad():
        model.blocks[2].linear.weight[0, 0] = math.inf
    assert ck.diagnose(model, *data["images"]).kind == EXPLODING


def test_scale_problems_get_their_own_warning_not_exploding(data):
    X, y = data["images"]
    model = ck.mlp(depth=4, width=64, activation="relu", init="kaiming")
    raw = ck.diagnose(model, X * 255, y)
    assert raw.kind == HEALTHY and any("not normalised" in w for w in raw.warnings)
    assert not ck.diagnose(model, X, y).warnings
    assert any("too large" in w for w in ck.diagnose(model, X, y, lr=10.0).warnings)
    assert any("too small" in w for w in ck.diagnose(model, X, y, lr=1e-7).warnings)
    assert not ck.diagnose(model, X, y, lr=0.01).warnings
    with pytest.raises(ValueError, match="lr"):
        ck.diagnose(model, X, y, lr=-1)


def state(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [None if p.grad is None else p.grad.clone() for p in model.parameters()],
            [m.training for m in model.modules()])


def same_state(a, b):
    (sa, ga, ma), (sb, gb, mb) = a, b
    return (all(torch.equal(sa[k], sb[k]) for k in sa) and ma == mb
            and all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y)) for x, y in zip(ga, gb)))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_diagnose_leaves_the_model_exactly_as_it_found_it(mode, data):
    X, y = data["images"]
    model = ck.mlp(depth=4, width=32, activation="relu", norm="batch")
    model.train(mode == "train")
    F.cross_entropy(model(X[:16]), y[:16]).backward()  # gradients the student already computed
    before = state(model)
    lstm = ck.rnn_classifier("lstm")
    rng = torch.get_rng_state()
    ck.diagnose(model, X, y)
    ck.time_step_grad_norms(lstm, *data["seq50"])
    assert same_state(before, state(model))
    assert torch.equal(rng, torch.get_rng_state())


def test_diagnose_casts_the_input_to_the_models_dtype(data):
    X, y = data["images"]
    model = ck.mlp(depth=3, width=16, activation="relu", init="kaiming").double()
    assert ck.diagnose(model, X.float(), y).kind in (HEALTHY, MILD_V)


def test_time_steps_read_the_layout_from_the_layer(data):
    x, y = data["seq50"]
    torch.manual_seed(0)
    batch_first = zoo.Recurrent("gru", hidden=8)
    time_major = copy.deepcopy(batch_first)
    time_major.rnn.batch_first = False
    a = ck.time_step_grad_norms(batch_first, x, y)
    b = ck.time_step_grad_norms(time_major, x.transpose(0, 1).contiguous(), y)
    assert a.shape == (50,) and torch.allclose(a, b, rtol=1e-4)
    square = ck.make_sequence_task(n=32, length=32, seed=0)  # T == B: no guessing
    assert ck.time_step_grad_norms(ck.rnn_classifier("rnn"), *square).shape == (32,)


def test_a_layout_mismatch_is_a_clear_error(data):
    x, y = data["seq50"]
    with pytest.raises(ValueError, match="batch_first=False"):
        ck.diagnose(zoo.Recurrent("lstm", batch_first=False), x, y)
    with pytest.raises(ValueError, match="batch_first=False"):
        ck.time_step_grad_norms(zoo.Recurrent("lstm", vocab=10, batch_first=False), *data["tokens30"])


def test_time_steps_work_with_token_ids_and_packed_sequences(data):
    tokens = ck.time_step_grad_norms(zoo.Recurrent("lstm", vocab=10), *data["tokens30"])
    packed = ck.time_step_grad_norms(zoo.Recurrent("gru", packed=True), *data["seq40"])
    assert tokens.shape == (30,) and packed.shape == (40,)
    assert tokens[0] < tokens[-1] and packed[0] < packed[-1]
    with pytest.raises(ValueError, match="no recurrent layer"):
        ck.time_step_grad_norms(ck.mlp(depth=2, width=8), *data["images"])


def test_rnn_gradient_to_step_zero_that_is_exactly_zero_is_vanishing():
    x, y = ck.make_sequence_task(n=64, length=200, seed=0)
    torch.manual_seed(0)
    verdict = ck.diagnose(ck.rnn_classifier("rnn"), x, y)
    assert verdict.kind == VANISHING


def test_weight_gradient_norms_and_their_checks():
    model = ck.mlp(depth=2, width=8)
    with pytest.raises(ValueError, match="backward"):
        ck.weight_grad_norms(model)
    F.cross_entropy(model(torch.randn(4, 784)), torch.tensor([0, 1, 2, 3])).backward()
    assert list(ck.weight_grad_norms(model)) == ["blocks.0.linear.weight", "blocks.1.linear.weight", "head.weight"]


def test_diagnose_checks_its_arguments():
    model = ck.mlp(depth=1, width=4)
    with pytest.raises(ValueError, match=r"X of shape \(5, 784\)"):
        ck.diagnose(model, torch.randn(5, 784), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="model"):
        ck.diagnose("not a model", torch.randn(5, 784), torch.zeros(5, dtype=torch.long))
