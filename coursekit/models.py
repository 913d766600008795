"""The lessons' models: an MLP built by depth, width, activation, init, normalization and
residual connections, and recurrent classifiers for a synthetic sequence task."""

import math

import torch
from torch import nn

from .i18n import tr
from .runtime import get_device
from .validate import check_choice, check_int, check_module, check_positive

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}
INITS = ("default", "normal", "zeros", "lecun", "xavier", "kaiming")
NORMS = (None, "batch", "layer")
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def init_weights(model, scheme="default", std=None, nonlinearity="relu"):
    """Re-initialise every Linear and Conv layer of `model` in place; biases become 0.

    default : keep PyTorch's own init, U(-sqrt(k), sqrt(k)) with k = 1/fan_in
    normal  : N(0, std^2)
    zeros   : all weights 0 (symmetry is never broken: lesson 03)
    lecun   : N(0, 1/fan_in)                    LeCun et al. 1998
    xavier  : N(0, 2/(fan_in + fan_out))        Glorot & Bengio 2010
    kaiming : N(0, 2/fan_in)                    He et al. 2015, for ReLU
    (for LeakyReLU, torch.nn.init.kaiming_normal_(w, a=slope, nonlinearity='leaky_relu'))
    """
    check_module("model", model)
    check_choice("scheme", scheme, INITS)
    if scheme == "normal":
        if std is None:
            raise ValueError(tr("std_needed"))
        std = check_positive("std", std)
    elif std is not None:
        raise ValueError(tr("std_unused", init=scheme))
    if scheme == "default":
        return model
    for layer in model.modules():
        if not isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            continue
        w = layer.weight
        if scheme == "normal":
            nn.init.normal_(w, 0.0, std)
        elif scheme == "zeros":
            nn.init.zeros_(w)
        elif scheme == "lecun":
            nn.init.kaiming_normal_(w, nonlinearity="linear")  # gain 1: std = 1/sqrt(fan_in)
        elif scheme == "xavier":
            nn.init.xavier_normal_(w)
        elif scheme == "kaiming":
            nn.init.kaiming_normal_(w, nonlinearity=nonlinearity)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return model


class Block(nn.Module):
    """Linear -> [norm] -> activation; with residual=True: x + activation(norm(Linear(x)))."""

    def __init__(self, n_in, n_out, activation, norm=None, residual=False):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.norm = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[norm](n_out) if norm else nn.Identity()
        self.act = ACTIVATIONS[activation]()
        self.residual = residual and n_in == n_out

    def forward(self, x):
        h = self.act(self.norm(self.linear(x)))
        return x + h if self.residual else h


class MLP(nn.Module):
    """`depth` hidden blocks of `width` units, then a linear layer to the classes."""

    def __init__(self, depth=4, width=64, activation="relu", init="default", std=None, norm=None,
                 residual=False, in_features=784, out_features=10):
        super().__init__()
        depth = check_int("depth", depth)
        width = check_int("width", width)
        check_int("in_features", in_features)
        check_int("out_features", out_features)
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("norm", norm, NORMS)
        sizes = [in_features] + [width] * depth
        self.blocks = nn.Sequential(*[Block(a, b, activation, norm, residual) for a, b in zip(sizes, sizes[1:])])
        self.head = nn.Linear(width, out_features)
        init_weights(self, init, std, nonlinearity="leaky_relu" if activation == "leaky_relu" else "relu")

    def forward(self, x):
        return self.head(self.blocks(x))


def mlp(depth=4, width=64, activation="relu", init="default", std=None, norm=None, residual=False,
        in_features=784, out_features=10):
    """Build an MLP (see `MLP`) on the course's device. Example: mlp(depth=20, activation="tanh", init="normal", std=1.0)."""
    return MLP(depth, width, activation, init, std, norm, residual, in_features, out_features).to(get_device())


class SequenceClassifier(nn.Module):
    """A recurrent layer (plain RNN, LSTM or GRU) that reads a sequence; a linear layer reads
    its last hidden state and predicts the class."""

    def __init__(self, cell="rnn", hidden=32, input_size=1, num_classes=2, nonlinearity="tanh",
                 recurrent_scale=None):
        super().__init__()
        check_choice("cell", cell, CELLS)
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        hidden = check_int("hidden", hidden)
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = CELLS[cell](check_int("input_size", input_size), hidden, batch_first=True, **extra)
        self.head = nn.Linear(hidden, check_int("num_classes", num_classes))
        if recurrent_scale is not None:
            # W_hh = scale * (a random orthogonal matrix): every singular value equals `scale`,
            # so backprop through one time step multiplies the gradient by about `scale`.
            check_positive("recurrent_scale", recurrent_scale)
            with torch.no_grad():
                for block in self.rnn.weight_hh_l0.view(-1, hidden, hidden):
                    nn.init.orthogonal_(block, gain=recurrent_scale)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def rnn_classifier(cell="rnn", hidden=32, input_size=1, num_classes=2, nonlinearity="tanh", recurrent_scale=None):
    """Build a SequenceClassifier on the course's device. Example: rnn_classifier("lstm", hidden=32)."""
    return SequenceClassifier(cell, hidden, input_size, num_classes, nonlinearity, recurrent_scale).to(get_device())


def make_sequence_task(n=1000, length=50, seed=0):
    """A synthetic memory task: x is a sequence of N(0,1) numbers, shape (n, length, 1);
    the class is 1 when the FIRST number is positive. To answer, the network must carry
    information (and, backwards, the gradient) across the whole sequence."""
    n, length = check_int("n", n), check_int("length", length)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, length, 1, generator=g)
    y = (x[:, 0, 0] > 0).long()
    return x.to(get_device()), y.to(get_device())
