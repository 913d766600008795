"""Look inside a network while it trains: per-layer activation statistics, weight-gradient
norms and histograms, the update:data ratio, and a one-line verdict.

The hooks work on any nn.Module a student builds (Linear, Conv, RNN/LSTM/GRU, activation
layers), in the spirit of fastai's ActivationStats and Karpathy's makemore part 3.
"""

import math
from dataclasses import dataclass, field

import torch
from torch import nn
import torch.nn.functional as F

from .i18n import tr
from .validate import check_data, check_module, check_positive, first_forward

ACTIVATION_TYPES = (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus)
LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.RNNBase)
SATURATION = 0.97  # |tanh| > 0.97, or sigmoid within 0.03 of 0 or 1, counts as saturated


def _units(output, module):
    """The output as a (samples, units) matrix: a unit is a feature, a channel, or a hidden unit."""
    if isinstance(module, nn.RNNBase):
        output = output[0]
        return output.reshape(-1, output.shape[-1])
    if output.ndim == 1:
        return output.reshape(-1, 1)
    return output.transpose(0, 1).reshape(output.shape[1], -1).T


def activation_stats(h, kind):
    """Statistics of one layer's outputs h (samples x units).

    saturated: fraction of values in the flat tails (tanh, sigmoid, tanh RNNs), else None.
    dead: fraction of units that are exactly 0 for every sample of the batch (ReLU); for LeakyReLU,
          the fraction of units that are negative for every sample (dead under a ReLU; a LeakyReLU
          still passes them slope x the gradient, so they can come back); else None.
    near_zero: fraction of values with |h| < 0.01.
    """
    h = h.detach().float()
    stats = {"mean": h.mean().item(), "std": h.std().item() if h.numel() > 1 else 0.0,
             "near_zero": (h.abs() < 0.01).float().mean().item(), "saturated": None, "dead": None}
    if kind in ("tanh", "rnn"):
        stats["saturated"] = (h.abs() > SATURATION).float().mean().item()
    elif kind == "sigmoid":
        stats["saturated"] = ((h < 1 - SATURATION) | (h > SATURATION)).float().mean().item()
    elif kind == "relu":
        stats["dead"] = (h == 0).all(dim=0).float().mean().item()
    elif kind == "leaky_relu":
        stats["dead"] = (h < 0).all(dim=0).float().mean().item()
    return stats


def _kind(module):
    if isinstance(module, nn.Tanh) or (isinstance(module, nn.RNN) and module.nonlinearity == "tanh"):
        return "tanh"
    if isinstance(module, (nn.LSTM, nn.GRU)):
        return "rnn"
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, nn.ReLU) or (isinstance(module, nn.RNN) and module.nonlinearity == "relu"):
        return "relu"
    if isinstance(module, nn.LeakyReLU):
        return "leaky_relu"
    return "other"


def watched_layers(model):
    """The layers whose outputs the Monitor records: the activation layers when the model has
    any, else its Linear / Conv / recurrent layers."""
    acts = [(n, m) for n, m in model.named_modules() if isinstance(m, ACTIVATION_TYPES)]
    found = acts or [(n, m) for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]
    if not found:
        raise ValueError(tr("no_layers", model=type(model).__name__))
    return found


def weight_parameters(model):
    """(name, parameter) for every weight matrix or kernel, in the model's order (biases and
    norm scales are left out: their gradients tell less)."""
    return [(n, p) for n, p in model.named_parameters() if p.ndim >= 2 and p.requires_grad]


def weight_grad_norms(model):
    """{name: ||dL/dW||} for every weight that has a gradient (after loss.backward())."""
    check_module("model", model)
    norms = {n: p.grad.norm().item() for n, p in weight_parameters(model) if p.grad is not None}
    if not norms:
        raise ValueError(tr("no_params", model=type(model).__name__))
    return norms


@dataclass
class Verdict:
    """The one-line diagnosis of a backward pass, with the numbers behind it."""

    kind: str  # "vanishing", "exploding" or "healthy"
    norms: dict  # weight-gradient norm per layer, input side first
    ratio: float  # first layer's norm / last layer's norm
    text: str

    def __str__(self):
        return self.text

    def _repr_pretty_(self, p, cycle):
        p.text(self.text)


def verdict(norms, vanish_ratio=1e-2, explode_ratio=1e2, explode_norm=1e3, vanish_norm=1e-4):
    """Diagnose per-layer gradient norms (input side first).

    exploding: any norm is NaN/Inf, above `explode_norm`, or layer 1 / last > `explode_ratio`;
    vanishing: layer 1 / last layer < `vanish_ratio`, or every norm below `vanish_norm`;
    otherwise healthy.
    """
    if not norms:
        raise ValueError(tr("no_grad_yet"))
    names, values = list(norms), list(norms.values())
    first, last = values[0], values[-1]
    ratio = first / last if last > 0 else math.inf
    bad = [n for n, v in norms.items() if not math.isfinite(v)]
    if bad:
        return Verdict("exploding", norms, ratio, tr("verdict_nonfinite", layer=bad[0]))
    big = max(range(len(values)), key=values.__getitem__)
    if values[big] > explode_norm or ratio > explode_ratio:
        return Verdict("exploding", norms, ratio, tr("verdict_exploding", big=values[big], layer=names[big], ratio=ratio))
    if values[big] < vanish_norm:
        return Verdict("vanishing", norms, ratio, tr("verdict_all_small", high=values[big], limit=vanish_norm))
    if ratio < vanish_ratio:
        return Verdict("vanishing", norms, ratio, tr("verdict_vanishing", first=first, ratio=ratio, last=last))
    return Verdict("healthy", norms, ratio, tr("verdict_healthy", low=min(values), high=max(values), ratio=ratio))


def _on_model_device(model, *tensors):
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return [t.to(device) for t in tensors]


def diagnose(model, X, y, loss_fn=F.cross_entropy):
    """One forward and backward pass on (X, y), then the verdict. The model's gradients are
    cleared afterwards, so diagnosing leaves no trace on it."""
    check_module("model", model)
    check_data(X, y)
    model.zero_grad(set_to_none=True)
    X, y = _on_model_device(model, X, y)
    first_forward(model, loss_fn, X, y).backward()
    result = verdict(weight_grad_norms(model))
    model.zero_grad(set_to_none=True)
    return result


def time_step_grad_norms(model, x, y, loss_fn=F.cross_entropy):
    """||dL/dx_t|| for each time step t of a batch of sequences x (batch, time, features):
    how much of the gradient reaches step t, going back from the end."""
    check_module("model", model)
    check_data(x, y)
    x, y = _on_model_device(model, x, y)
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return x.grad.norm(dim=(0, 2))


@dataclass(repr=False)
class Monitor:
    """Forward hooks that record per-layer activation statistics on every forward pass,
    plus the update:data ratio when the training loop reports its steps.

        with Monitor(model) as mon:
            model(X)
        mon.stats["blocks.0.act"][-1]   # {'mean':..., 'std':..., 'saturated':..., 'dead':...}
        mon.last["blocks.0.act"]        # the last batch of outputs, for histograms

    `remove()` (or leaving the `with` block) takes the hooks off: the model is as before.
    """

    model: nn.Module
    record: bool = True
    stats: dict = field(default_factory=dict)
    last: dict = field(default_factory=dict)
    update_ratio: dict = field(default_factory=dict)

    def __post_init__(self):
        check_module("model", self.model)
        self.layers = watched_layers(self.model)
        self.weights = weight_parameters(self.model)
        self._before = None
        self._handles = [m.register_forward_hook(self._hook(n, m)) for n, m in self.layers]

    def _hook(self, name, module):
        kind = _kind(module)

        def on_forward(mod, inputs, output):
            if self.record:
                h = _units(output, mod).detach()
                self.last[name] = h
                self.stats.setdefault(name, []).append(activation_stats(h, kind))

        return on_forward

    def before_step(self):
        """Remember the weights before optimizer.step()."""
        self._before = [p.detach().clone() for _, p in self.weights]

    def after_step(self):
        """Record log10(std(W_new - W_old) / std(W_old)) per weight (Karpathy: about -3 is healthy)."""
        for (name, p), old in zip(self.weights, self._before):
            ratio = (p.detach() - old).std() / (old.std() + 1e-12)
            self.update_ratio.setdefault(name, []).append(math.log10(ratio.item() + 1e-30))
        self._before = None

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def table(self):
        """The latest statistics per watched layer, as rows of text (print it before plotting)."""
        pct = lambda v: "   -  " if v is None else f"{100 * v:5.1f}%"
        rows = [f"{tr('layer'):<16}{tr('mean'):>8}{'std':>8}{tr('saturated'):>11}{tr('dead'):>8}{tr('near_zero'):>8}"]
        for name, history in self.stats.items():
            s = history[-1]
            rows.append(f"{name:<16}{s['mean']:8.3f}{s['std']:8.3f}{pct(s['saturated']):>11}{pct(s['dead']):>8}{pct(s['near_zero']):>8}")
        return "\n".join(rows)
