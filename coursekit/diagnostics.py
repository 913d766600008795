"""One look at a backward pass: where the gradient goes, layer by layer (and, in a recurrent
net, step by step), and a verdict that names the layers it compared.

Backpropagation carries the signal dL/dh_l, the gradient at the output of layer l. Through a layer
of width n with weights of std sigma_w and activation phi, its size changes by the backward gain

    ||dL/dh_{l-1}|| / ||dL/dh_l||  ~  sigma_w * sqrt(n * E[phi'(z)^2])        (mean field)

and a gain away from 1, repeated through depth or time, is what makes a gradient vanish or
explode. Weight gradients dL/dW_l = dL/dh_l h_{l-1}^T also carry the forward signal h_{l-1}, which
can shrink or grow by itself and hide the trend, so the verdict reads dL/dh, not ||dL/dW||.
"""

import copy
import math
import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .i18n import format_table, tr
from .validate import check_data, check_module, check_positive, first_forward

# The verdict's thresholds on R = signal at the first hidden layer / signal at the last one.
# Healthy nets at init give R from about 0.3 to 3 (finite-width noise, a gain within ~10% of 1
# per layer); a factor of 100 over the chain is a network whose first layer learns 100x slower.
FAILING = 100.0  # R < 1/100 is vanishing, R > 100 exploding
MILD = 3.0  # R < 1/3 (or > 3): mild, the first layer learns several times slower (seed 003's net: R about 0.3)
INPUT_SCALE = 10.0  # |mean| or std of the input above this: not normalised
UPDATE_RANGE = (-5.0, -1.0)  # log10(lr * std(dL/dW) / std(W)) outside this: steps too small / too large


def is_layer(module):
    """A layer owns a weight matrix or kernel (Linear, Conv, RNN/LSTM/GRU, attention, embedding, or
    a student's own module with an nn.Parameter of 2 or more dimensions)."""
    return any(p.ndim >= 2 for p in module.parameters(recurse=False))


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


def _rms(t):
    return t.detach().double().pow(2).mean().sqrt().item() if t.numel() else 0.0


def _main_tensor(output):
    """The tensor a layer passes on: the output itself, the first of a tuple (RNNs, attention),
    or the data of a PackedSequence."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if isinstance(output, PackedSequence):
        output = output.data
    return output if isinstance(output, torch.Tensor) and output.is_floating_point() else None


def _track(t):
    """Make sure the gradient reaches t: a tensor cut off from the graph (the output of a frozen
    first layer, a frozen embedding) gets requires_grad, so the layers below it are measured too."""
    if t is not None and not t.requires_grad and t.grad_fn is None:
        t.requires_grad_(True)
    return t


@dataclass
class LayerCall:
    """One call of a layer during the forward pass, and the gradient that came back to its output."""

    name: str  # the module's name; "rnn#2" for the second call of a module called twice
    kind: str  # "embedding", "recurrent" or "layer"
    out_rms: float = math.nan
    grad_rms: float = None  # RMS of dL/dh over the batch and the units; None if none came back (output unused)


class _Recorder:
    """Forward hooks on every layer (and a tensor hook on its output) for one forward/backward
    pass; the calls are kept in the order they ran."""

    def __init__(self, model, n_examples=None):
        self.calls, self.counts, self.time, self.n_examples = [], {}, None, n_examples
        layers = [(n, m) for n, m in model.named_modules() if n and is_layer(m)]  # the model itself is not a layer
        self.handles = [m.register_forward_hook(self._on_forward(n)) for n, m in layers]
        recurrent = [(n, m) for n, m in layers if isinstance(m, nn.RNNBase)]
        if recurrent:
            self.handles.append(recurrent[0][1].register_forward_pre_hook(self._on_sequence(*recurrent[0])))

    def _on_forward(self, name):
        def hook(module, inputs, output):
            self.counts[name] = self.counts.get(name, 0) + 1
            label = name if self.counts[name] == 1 else f"{name}#{self.counts[name]}"
            kind = ("embedding" if isinstance(module, nn.Embedding) else
                    "recurrent" if isinstance(module, nn.RNNBase) else "layer")
            call = LayerCall(label, kind)
            out = _track(_main_tensor(output))
            if out is not None:
                call.out_rms = _rms(out)
                if out.requires_grad:
                    out.register_hook(lambda g: setattr(call, "grad_rms", _rms(g)))
            self.calls.append(call)
        return hook

    def _on_sequence(self, name, module):
        """The first recurrent layer's input sequence x_1..x_T, to measure dL/dx_t per step."""
        def hook(mod, inputs):
            if self.time is not None:  # a second call of the same layer: keep the first
                return
            x = inputs[0]
            packed = x.batch_sizes if isinstance(x, PackedSequence) else None
            data = _track(x.data if packed is not None else x)
            if data is None or not data.is_floating_point() or not data.requires_grad:
                return
            self.time = {"layer": name, "packed": packed, "batch_first": module.batch_first, "shape": tuple(data.shape)}
            _check_layout(self.time, self.n_examples)
            data.register_hook(lambda g: self.time.__setitem__("grad", g.detach()))
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def _per_step(time):
    """RMS and norm of dL/dx_t for each time step t, from the gradient of the recurrent layer's input."""
    g = time["grad"].double()
    if time["packed"] is not None:  # packed data: the rows of step 0, then those of step 1, ...
        steps = torch.split(g, time["packed"].tolist())
        return [s.pow(2).mean().sqrt().item() for s in steps], torch.stack([s.norm() for s in steps]).float()
    if g.ndim == 2:  # unbatched (T, features)
        g = g[:, None]
    elif time["batch_first"]:
        g = g.transpose(0, 1)
    return g.pow(2).mean(dim=(1, 2)).sqrt().tolist(), g.norm(dim=(1, 2)).float()


class LayoutMismatch(Exception):
    """Raised from inside the forward pass (not a ValueError, so that the model/data check lets it through)."""


def _check_layout(time, n_examples):
    """A (time, batch) tensor fed to a batch_first layer, or the reverse, is a clear error."""
    if n_examples is None or time["packed"] is not None or len(time["shape"]) != 3:
        return
    batch_dim = 0 if time["batch_first"] else 1
    if time["shape"][batch_dim] != n_examples and time["shape"][1 - batch_dim] == n_examples:
        raise LayoutMismatch(tr("layout_mismatch", layer=time["layer"], batch_first=time["batch_first"],
                                shape=time["shape"], n=n_examples,
                                layout="(batch, time, ...)" if time["batch_first"] else "(time, batch, ...)",
                                other=not time["batch_first"]))


@dataclass(repr=False)
class Profile:
    """The measurements of one backward pass, in the order the layers ran (input side first)."""

    calls: list  # every LayerCall
    loss: float
    grad_data: dict  # {weight name: std(dL/dW) / std(W)}
    time_rms: list = None  # RMS of dL/dx_t per time step t, for a recurrent model
    time_norms: torch.Tensor = None  # ||dL/dx_t|| per time step t
    recurrent: str = None  # the recurrent layer whose input was measured
    input_stats: tuple = None  # (mean, std) of a floating input

    @property
    def chain(self):
        """The hidden chain the verdict reads: every layer call but the embeddings, the outputs that
        the loss does not use, and the head (the last layer to run, whose dL/dh is the loss's own gradient)."""
        calls = [c for c in self.calls if c.kind != "embedding" and c.grad_rms is not None]
        return calls[:-1] if len(calls) > 1 else []

    def compared(self):
        """The layers of the chain the verdict compares: those of its most repeated role (the name with
        its numbers left out: blocks.#.linear, layers.#.self_attn, convs.#), input side first, so
        that like is compared with like (in a Transformer an attention output with an attention output)."""
        chain = self.chain
        roles = [role(c.name) for c in chain]
        most = max(roles, key=roles.count, default=None)
        return [c for c, r in zip(chain, roles) if r == most] if roles.count(most) > 1 else chain

    def gains(self):
        """Backward gain into each layer of the chain from the one after it: rms(dL/dh_{l-1}) / rms(dL/dh_l)."""
        chain = self.chain
        return {a.name: a.grad_rms / b.grad_rms if b.grad_rms > 0 else math.nan for a, b in zip(chain, chain[1:])}

    def table(self):
        """Per layer, in execution order: RMS of h, RMS of dL/dh, backward gain, grad:data."""
        gains = self.gains()
        rows = [[tr("layer"), "rms(h)", "rms(dL/dh)", tr("gain"), "grad:data"]]
        for c in self.calls:
            gain, ratio = gains.get(c.name), self.grad_data.get(c.name.split("#")[0])
            rows.append([c.name, f"{c.out_rms:.2e}", "-" if c.grad_rms is None else f"{c.grad_rms:.2e}",
                         "" if gain is None else f"{gain:.2f}",
                         "" if ratio is None else f"{ratio:.1e}"])
        return format_table(rows)


def role(name):
    """What a layer is, without where it is: 'blocks.3.linear' -> 'blocks.#.linear'."""
    return ".".join("#" if part.isdigit() else part for part in name.split("#")[0].split("."))


def _grad_data(model, modules_run):
    """std(dL/dW) / std(W) for every weight of the layers that ran, by layer name."""
    out = {}
    for name, module in model.named_modules():
        if name.split("#")[0] not in modules_run:
            continue
        ratios = [p.grad.std().item() / (p.std().item() + 1e-30) for p in module.parameters(recurse=False)
                  if p.ndim >= 2 and p.grad is not None and p.numel() > 1]
        if ratios:
            out[name] = max(ratios)
    return out


def _cast_like(model, t):
    """t on the model's device, and in its floating dtype when t is floating (a float64 model, float32 data)."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    if param is None:
        return t
    return t.to(param.device, dtype=param.dtype if t.is_floating_point() else t.dtype)


def gradient_profile(model, X, y, loss_fn=F.cross_entropy):
    """One forward and backward pass of a copy of `model` in training mode on (X, y): the signal
    dL/dh at every layer's output in the order the layers ran, grad:data per weight, and, for a
    recurrent model, dL/dx_t per time step. The model itself is left exactly as it was."""
    check_module("model", model)
    check_data(X, y, same_length=False)  # (time, batch) sequences: checked against the recurrent layer below
    probe = copy.deepcopy(model).train()
    probe.zero_grad(set_to_none=True)
    X = _cast_like(probe, X.detach()).clone()
    y = _cast_like(probe, y.detach())
    if X.is_floating_point():
        X.requires_grad_(True)
    recorder = _Recorder(probe, n_examples=len(y) if y.ndim == 1 else None)
    try:
        with torch.random.fork_rng(devices=[]):  # dropout in the copy leaves the caller's random stream alone
            loss = first_forward(probe, loss_fn, X, y)
            loss.backward()
    except LayoutMismatch as error:
        raise ValueError(str(error)) from None
    finally:
        recorder.remove()
    profile = Profile(recorder.calls, loss.item(), _grad_data(probe, {c.name.split("#")[0] for c in recorder.calls}))
    if X.is_floating_point():
        profile.input_stats = (X.detach().mean().item(), X.detach().std().item() if X.numel() > 1 else 0.0)
    if recorder.time is not None and "grad" in recorder.time:
        profile.time_rms, profile.time_norms = _per_step(recorder.time)
        profile.recurrent = recorder.time["layer"]
    return profile


@dataclass
class Verdict:
    """The one-line diagnosis of a backward pass, with the numbers behind it.

    kind: "healthy", "mild vanishing", "vanishing", "mild exploding" or "exploding".
    ratio: signal at the input side / signal at the output side (first / last hidden layer, or
    step 1 / step T for a recurrent model). layers: the two layers (or steps) compared.
    norms: RMS of dL/dh per hidden layer, input side first (what plot_grad_norms draws).
    """

    kind: str
    ratio: float
    layers: tuple
    norms: dict
    text: str
    warnings: list = field(default_factory=list)
    profile: Profile = None

    @property
    def label(self):
        """The kind in the notebook's language."""
        return tr(f"kind_{self.kind.replace(' ', '_')}")

    def __str__(self):
        return "\n".join([self.text] + self.warnings)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def table(self):
        return self.profile.table() if self.profile is not None else ""


def _level(ratio):
    if ratio < 1 / FAILING:
        return "vanishing"
    if ratio < 1 / MILD:
        return "mild vanishing"
    if ratio > FAILING:
        return "exploding"
    if ratio > MILD:
        return "mild exploding"
    return "healthy"


def verdict(signal, steps=False, layer=None):
    """The verdict on a profile of the back-propagated signal: {layer name: RMS of dL/dh}, input
    side first (or, with steps=True, a list of RMS of dL/dx_t over time, for the layer `layer`).

    R = first / last. R < 1/100: vanishing; R < 1/3: mild vanishing; R > 3: mild exploding;
    R > 100: exploding; else healthy. A NaN or Inf anywhere is exploding; an exact 0 is vanishing
    (no gradient reaches that layer); 0/0 is never a ratio.
    """
    if isinstance(signal, Profile):
        return _verdict_of_profile(signal)
    if steps:
        signal = {i + 1: v for i, v in enumerate(signal)}
    if not signal:
        raise ValueError(tr("no_grad_yet"))
    names, values = list(signal), [float(v) for v in signal.values()]
    where = (lambda i: tr("time_step_n", step=names[i])) if steps else (lambda i: names[i])
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        return Verdict("exploding", math.nan, (where(bad[-1]),), signal, tr("verdict_nonfinite", layer=where(bad[-1])))
    zeros = [i for i, v in enumerate(values) if v == 0]
    if zeros:
        return Verdict("vanishing", 0.0, (where(zeros[-1]),), signal, tr("verdict_zero", layer=where(zeros[-1])))
    if len(values) < 2:
        return Verdict("healthy", 1.0, tuple(where(i) for i in range(len(values))), signal,
                       tr("verdict_shallow", n=len(values)))
    ratio = values[0] / values[-1]
    kind = _level(ratio)
    gain = ratio ** (1 / (len(values) - 1))
    key = "verdict_time" if steps else "verdict_depth"
    text = tr(key, kind=tr(f"kind_{kind.replace(' ', '_')}"), first=where(0), last=where(len(values) - 1),
              ratio=ratio, n=len(values), gain=gain, layer=layer)
    return Verdict(kind, ratio, (where(0), where(len(values) - 1)), signal, text)


def _warnings(profile, lr):
    out = []
    if profile.input_stats is not None:
        mean, std = profile.input_stats
        if abs(mean) > INPUT_SCALE or std > INPUT_SCALE:
            out.append(tr("warn_input_scale", mean=mean, std=std))
    if lr is not None:
        chain = {c.name.split("#")[0] for c in profile.chain} or set(profile.grad_data)
        update = {n: math.log10(lr * r + 1e-30) for n, r in profile.grad_data.items() if n in chain}
        if update:
            big, small = max(update, key=update.get), min(update, key=update.get)
            if update[big] > UPDATE_RANGE[1]:
                out.append(tr("warn_update_large", lr=lr, layer=big, ratio=10 ** update[big]))
            elif update[small] < UPDATE_RANGE[0]:
                out.append(tr("warn_update_small", lr=lr, layer=small, ratio=10 ** update[small]))
    return out


def _verdict_of_profile(profile, lr=None):
    if not math.isfinite(profile.loss):
        result = Verdict("exploding", math.nan, (), {}, tr("verdict_loss_nonfinite", loss=profile.loss))
    elif profile.time_rms is not None:
        result = verdict(profile.time_rms, steps=True, layer=profile.recurrent)
    else:
        compared = {c.name: c.grad_rms for c in profile.compared()}
        result = verdict(compared) if compared else Verdict("healthy", 1.0, (), {}, tr("verdict_shallow", n=0))
    if profile.time_rms is None:
        result.norms = {c.name: c.grad_rms for c in profile.chain}
    result.profile = profile
    result.warnings = _warnings(profile, lr)
    return result


def diagnose(model, X, y, loss_fn=F.cross_entropy, lr=None):
    """One forward and backward pass on a copy of the model, in training mode, then the verdict.

    The verdict reads the back-propagated signal dL/dh through the hidden layers, in the order
    they ran (recurrent models: dL/dx_t through time). With the learning rate `lr` it also warns
    when a step would change a layer's weights by more than 1/10 or less than 1e-5 of their size.
    The model is left exactly as it was: its gradients, buffers (BatchNorm statistics) and mode.
    """
    if lr is not None:
        lr = check_positive("lr", lr)
    return _verdict_of_profile(gradient_profile(model, X, y, loss_fn), lr)


def time_step_grad_norms(model, x, y, loss_fn=F.cross_entropy):
    """||dL/dx_t|| for each time step t of a batch of sequences: how much of the gradient reaches
    step t, going back from the end. x_t is the input of the model's first recurrent layer (after an
    embedding, if there is one), so the layout, (batch, time) or (time, batch), is read from the layer's
    `batch_first`; token ids and packed sequences work too."""
    profile = gradient_profile(model, x, y, loss_fn)
    if profile.time_norms is None:
        raise ValueError(tr("no_recurrent", model=type(model).__name__))
    return profile.time_norms
