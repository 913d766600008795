"""Models the lessons never use, for the diagnostics' tests: a small CNN, recurrent models in every
input form, a small Transformer encoder, and awkward models (head defined first, shared, frozen, tied)."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class CNN(nn.Module):
    """`depth` 3x3 convolutions of `channels` channels (functional activation), global average pool, a Linear head."""

    def __init__(self, depth=6, channels=16, activation=F.relu, init=None):
        super().__init__()
        self.activation = activation
        self.convs = nn.ModuleList(nn.Conv2d(1 if i == 0 else channels, channels, 3, padding=1) for i in range(depth))
        self.head = nn.Linear(channels, 10)
        if init == "kaiming":
            for conv in self.convs:
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                nn.init.zeros_(conv.bias)

    def forward(self, x):
        x = x.view(-1, 1, 28, 28)
        for conv in self.convs:
            x = self.activation(conv(x))
        return self.head(x.mean(dim=(2, 3)))


class Recurrent(nn.Module):
    """An RNN/LSTM/GRU classifier that reads its input as given: (batch, time, features) or
    (time, batch, features), token ids through an embedding, or packed sequences of two lengths."""

    def __init__(self, cell="lstm", hidden=16, batch_first=True, vocab=None, packed=False, forget_bias=None):
        super().__init__()
        self.embedding = nn.Embedding(vocab, 8) if vocab else None
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](8 if vocab else 1, hidden, batch_first=batch_first)
        self.head = nn.Linear(hidden, 2)
        self.packed = packed
        if forget_bias is not None:
            with torch.no_grad():
                self.rnn.bias_ih_l0[hidden:2 * hidden] = forget_bias
                self.rnn.bias_hh_l0[hidden:2 * hidden] = 0.0

    def forward(self, x):
        if self.embedding is not None:
            x = self.embedding(x)
        if self.packed:
            batch_dim = 0 if self.rnn.batch_first else 1
            lengths = torch.full((x.shape[batch_dim],), x.shape[1 - batch_dim])
            lengths[::2] //= 2
            _, h = self.rnn(pack_padded_sequence(x, lengths, batch_first=self.rnn.batch_first, enforce_sorted=False))
            h = h[0] if isinstance(h, tuple) else h
            return self.head(h[-1])
        out, _ = self.rnn(x)
        return self.head(out[:, -1] if self.rnn.batch_first else out[-1])


class Transformer(nn.Module):
    """Token ids -> embedding + learned positions -> nn.TransformerEncoder (Pre-LN or Post-LN) -> mean -> head."""

    def __init__(self, layers=4, width=32, norm_first=True, vocab=16, length=12):
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.randn(length, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens):
        return self.head(self.encoder(self.embedding(tokens) + self.position).mean(dim=1))


class HeadFirst(nn.Module):
    """The head is defined before the body: __init__ order is not the order the layers run."""

    def __init__(self, depth=10, width=64, std=0.05):
        super().__init__()
        self.head = nn.Linear(width, 10)
        layers = []
        for i in range(depth):
            linear = nn.Linear(784 if i == 0 else width, width)
            nn.init.normal_(linear.weight, 0.0, std)
            layers += [linear, nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.head(self.body(x))


class Shared(nn.Module):
    """One Linear and one activation module, called `repeats` times in a row."""

    def __init__(self, width=64, repeats=4, activation=nn.Tanh):
        super().__init__()
        self.inp = nn.Linear(784, width)
        self.mid = nn.Linear(width, width)
        self.act = activation()
        self.unused = nn.Linear(width, width)  # never called: must not appear anywhere
        self.head = nn.Linear(width, 10)
        self.repeats = repeats

    def forward(self, x):
        h = self.act(self.inp(x))
        for _ in range(self.repeats):
            h = self.act(self.mid(h))
        return self.head(h)


class FunctionalMLP(nn.Module):
    """An MLP written with F.relu: no activation modules."""

    def __init__(self, depth=8, width=64, init="kaiming"):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(784 if i == 0 else width, width) for i in range(depth))
        self.out = nn.Linear(width, 10)
        if init == "kaiming":
            for layer in self.layers:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")

    def forward(self, x):
        for layer in self.layers:
            x = F.relu(layer(x))
        return self.out(x)


class TiedLanguageModel(nn.Module):
    """An embedding whose matrix is also the output layer's (weight tying), with a tanh MLP between."""

    def __init__(self, vocab=20, width=32, depth=4):
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        self.blocks = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), nn.Tanh())])
        self.out = nn.Linear(width, vocab, bias=False)
        self.out.weight = self.embedding.weight

    def forward(self, tokens):
        return self.out(self.blocks(self.embedding(tokens).mean(dim=1)))
