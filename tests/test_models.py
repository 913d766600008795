import math

import pytest
import torch
from torch import nn

import coursekit as ck


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu"])
@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_mlp_shapes(activation, norm):
    model = ck.mlp(depth=3, width=16, activation=activation, norm=norm, residual=True)
    assert model(torch.randn(5, 784)).shape == (5, 10)
    assert len(model.blocks) == 3


def test_residual_adds_the_input():
    model = ck.mlp(depth=2, width=8, in_features=8, activation="relu", init="zeros", residual=True)
    x = torch.randn(4, 8)
    # with zero weights F(x) = relu(0) = 0, so each residual block is the identity
    assert torch.equal(model.blocks(x), x)


@pytest.mark.parametrize("scheme, expected_std", [
    ("lecun", lambda fi, fo: math.sqrt(1 / fi)),
    ("xavier", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("kaiming", lambda fi, fo: math.sqrt(2 / fi)),
    ("normal", lambda fi, fo: 0.05),
])
def test_init_schemes_std(scheme, expected_std):
    layer = nn.Linear(400, 300)
    ck.init_weights(layer, scheme, std=0.05 if scheme == "normal" else None)
    assert abs(layer.weight.std().item() / expected_std(400, 300) - 1) < 0.02
    assert torch.all(layer.bias == 0)


def test_default_init_is_pytorchs_uniform():
    torch.manual_seed(0)
    model = ck.mlp(depth=1, width=200, init="default")
    bound = 1 / math.sqrt(784)
    w = model.blocks[0].linear.weight
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound


def test_zero_init_and_conv():
    conv = nn.Conv2d(3, 8, 3)
    ck.init_weights(conv, "kaiming")
    assert abs(conv.weight.std().item() / math.sqrt(2 / (3 * 3 * 3)) - 1) < 0.15
    model = ck.mlp(depth=2, width=8, init="zeros")
    assert all(torch.all(p == 0) for p in model.parameters())


@pytest.mark.parametrize("kwargs, name", [
    ({"depth": 0}, "depth"), ({"width": -1}, "width"), ({"activation": "swish"}, "activation"),
    ({"init": "he"}, "scheme"), ({"norm": "group"}, "norm"), ({"init": "normal"}, "std"),
    ({"init": "normal", "std": -1.0}, "std"), ({"init": "xavier", "std": 0.1}, "std"), ({"depth": 2.0}, "depth"),
])
def test_mlp_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ck.mlp(**kwargs)


def test_init_weights_needs_a_module():
    with pytest.raises(TypeError, match="model"):
        ck.init_weights("not a model", "xavier")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_rnn_classifier(cell):
    x, y = ck.make_sequence_task(n=8, length=12)
    model = ck.rnn_classifier(cell, hidden=16, recurrent_scale=1.1)
    assert model(x).shape == (8, 2)
    W = model.rnn.weight_hh_l0.detach()[:16]
    assert torch.allclose(torch.linalg.svdvals(W), torch.full((16,), 1.1), atol=1e-4)


def test_sequence_task_label_is_sign_of_first_value():
    x, y = ck.make_sequence_task(n=100, length=5, seed=3)
    assert x.shape == (100, 5, 1) and torch.equal(y, (x[:, 0, 0] > 0).long())


@pytest.mark.parametrize("kwargs, name", [({"cell": "transformer"}, "cell"), ({"hidden": 0}, "hidden"),
                                          ({"nonlinearity": "sigmoid"}, "nonlinearity"),
                                          ({"recurrent_scale": 0}, "recurrent_scale")])
def test_rnn_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ck.rnn_classifier(**kwargs)
