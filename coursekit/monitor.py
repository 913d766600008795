"""Watch a network while it trains: per layer and per call, what the forward pass produces (mean,
std, saturated and dead units, a histogram) and what the backward pass sends back (dL/dh), plus the
update:data ratio, in the spirit of fastai's ActivationStats and Karpathy's makemore part 3."""

import math

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .diagnostics import weight_parameters
from .i18n import format_table, tr
from .validate import check_int, check_module

ACTIVATION_TYPES = (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus)
LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.RNNBase)
CHANNEL_FIRST = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
                 nn.GroupNorm)
SATURATION = 0.97  # |tanh| > 0.97, or sigmoid within 0.03 of 0 or 1, counts as saturated
BINS = 40


def activation_stats(h, kind):
    """Statistics of one layer's outputs h (samples x units).

    saturated: fraction of values in the flat tails (tanh, sigmoid, tanh RNNs), else None.
    dead: fraction of units that are exactly 0 for every sample of the batch (ReLU); for LeakyReLU,
          the fraction of units that are negative for every sample (dead under a ReLU; a LeakyReLU
          still passes them slope x the gradient, so they can come back); for the output of a
          Linear or Conv layer (kind "pre"), the units <= 0 for every sample: dead if a ReLU follows;
          else None.
    near_zero: fraction of values with |h| < 0.01.
    """
    h = h.detach().float()
    tails = {"tanh": h.abs() > SATURATION, "rnn": h.abs() > SATURATION,
             "sigmoid": (h < 1 - SATURATION) | (h > SATURATION)}.get(kind)
    dead = {"relu": (h == 0).all(dim=0), "leaky_relu": (h < 0).all(dim=0), "pre": (h <= 0).all(dim=0)}.get(kind)
    values = [h.mean(), h.std() if h.numel() > 1 else h.new_zeros(()), (h.abs() < 0.01).float().mean(),
              tails.float().mean() if tails is not None else h.new_zeros(()),
              dead.float().mean() if dead is not None else h.new_zeros(())]
    mean, std, near_zero, saturated, dead_share = torch.stack(values).tolist()  # one copy, not five .item()
    return {"mean": mean, "std": std, "near_zero": near_zero, "saturated": saturated if tails is not None else None,
            "dead": dead_share if dead is not None else None}


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
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return "pre"
    return "other"


def watched_layers(model, modules=None):
    """The layers the Monitor records, in the model's order.

    modules=None: every activation module and every recurrent layer; a model with no activation
    modules (F.relu in its forward) has its Linear and Conv layers watched instead, whose outputs
    are the pre-activations. modules can also be a list of module names, or a tuple of module types.
    """
    named = [(n or type(m).__name__, m) for n, m in model.named_modules()]  # a bare nn.Linear is its own layer
    if modules is None:
        acts = [(n, m) for n, m in named if isinstance(m, ACTIVATION_TYPES)]
        found = [(n, m) for n, m in named if isinstance(m, ACTIVATION_TYPES + (nn.RNNBase,))] if acts else \
                [(n, m) for n, m in named if isinstance(m, LAYER_TYPES)]
    elif isinstance(modules, type) or (isinstance(modules, tuple) and all(isinstance(t, type) for t in modules)):
        found = [(n, m) for n, m in named if isinstance(m, modules)]
    else:
        names = dict(named)
        unknown = [n for n in modules if n not in names]
        if unknown:
            raise ValueError(tr("bad_choice", name="modules", allowed=list(names), value=unknown[0]))
        found = [(n, names[n]) for n in modules]
    if not found:
        raise ValueError(tr("no_layers", model=type(model).__name__))
    return found


def _unit_axis(module, output, model_has_conv1d):
    """Where the units are: channels (dim 1) for convolutions, normalisations over channels and the
    activations that follow them; the last dim for Linear layers, recurrent layers and the
    activations applied to (batch, ..., features), as in every Transformer MLP."""
    if isinstance(module, CHANNEL_FIRST):
        return 1
    if isinstance(module, ACTIVATION_TYPES) and (output.ndim >= 4 or (output.ndim == 3 and model_has_conv1d)):
        return 1
    return -1


def units(output, module, model_has_conv1d=False):
    """The output of a layer as a (samples, units) matrix."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if isinstance(output, PackedSequence):
        output = output.data
    if output.ndim == 2:
        return output
    if output.ndim == 1:
        return output.reshape(-1, 1)
    axis = _unit_axis(module, output, model_has_conv1d)
    return output.movedim(axis, -1).reshape(-1, output.shape[axis])


HIST_SAMPLE = 1024  # values per layer and record that go into its histogram (a strided sample beyond that)


def _share(excess, n):
    """The share of positive entries of `excess` per layer, by arithmetic (clamp, sign, sum), which is
    several times faster on a CPU than comparing and counting."""
    return excess.clamp_(min=0).sign_().sum(dim=(1, 2)) / n


def _group_stats(H, kinds, lo, hi):
    """The statistics of several layers' outputs at once: H is (layers, samples, units), stacked, so that
    a step costs a few passes over the data however many layers are watched. Per layer: mean, std,
    share near 0, share saturated (tanh, sigmoid, recurrent), share of dead units, and a histogram."""
    n = H[0].numel()
    flat = H.flatten(1)
    mean = flat.mean(dim=1)
    var = ((flat * flat).mean(dim=1) - mean * mean).clamp_(min=0) * (n / max(n - 1, 1))  # E[h^2] - E[h]^2
    size = H.abs()
    near_zero = _share(0.01 - size, n)
    saturated = _share(size - SATURATION, n)
    sigmoid = torch.tensor([k == "sigmoid" for k in kinds], device=H.device)
    if sigmoid.any():  # within 1 - SATURATION of 0 or 1
        saturated = torch.where(sigmoid, _share((H - 0.5).abs_() - (SATURATION - 0.5), n), saturated)
    top = H.amax(dim=1)  # per unit, over the samples: a dead ReLU unit's largest output is 0
    leaky = torch.tensor([k == "leaky_relu" for k in kinds], device=H.device)[:, None]
    dead = torch.where(leaky, top < 0, top <= 0).float().mean(dim=1)
    sample = flat[:, ::max(1, n // HIST_SAMPLE)]
    width = (hi - lo).clamp_min(1e-12)
    bins = ((sample - lo[:, None]) / width[:, None] * BINS).long().clamp_(0, BINS - 1)
    bins += BINS * torch.arange(len(H), device=H.device)[:, None]
    hist = torch.bincount(bins.flatten(), minlength=len(H) * BINS).view(len(H), BINS)
    stats = torch.stack([mean, var.sqrt(), near_zero, saturated, dead], dim=1)
    return torch.cat([stats, hist.to(stats.dtype)], dim=1).tolist()


class Monitor:
    """Hooks that record per-layer statistics of the forward pass and of the gradient that comes back.

        with ck.Monitor(model) as mon:
            loss = loss_fn(model(X), y)
            loss.backward()
        print(mon.table())            # per layer: mean, std, % saturated, % dead, % near 0, std of dL/dh
        mon.stats["blocks.0.act"][-1] # {'mean':..., 'std':..., 'saturated':..., 'dead':..., 'hist': [...]}
        mon.grad_stats[...]           # {'mean':..., 'std':...} of dL/dh, one per backward pass
        mon.last["blocks.0.act"]      # the last batch of outputs, for histograms

    A module called k times in one forward pass gets k rows (name, name#2, ...). Only forward passes
    in training mode are recorded (record_eval=True records the others too), every `record_every`-th
    of them, and each layer keeps its last `max_records` records. The hooks only keep the tensors;
    the statistics are computed for all layers at once when they are read or the next pass starts.
    `remove()`, or leaving the `with` block, takes the hooks off: the model is as before.
    """

    def __init__(self, model, modules=None, record_every=1, record_eval=False, max_records=1000, keep_last=True):
        self.model = check_module("model", model)
        self.record_every = check_int("record_every", record_every)
        self.max_records = check_int("max_records", max_records)
        self.record_eval, self.keep_last = bool(record_eval), bool(keep_last)
        self.record = True  # a training loop may switch recording off for some steps
        self._stats, self._grad_stats, self._last, self.last_grad, self.edges, self.update_ratio = {}, {}, {}, {}, {}, {}
        self.layers = watched_layers(model, modules)
        self._kinds = {n: _kind(m) for n, m in self.layers}
        self.weights = weight_parameters(model)
        self._has_conv1d = any(isinstance(m, nn.Conv1d) for m in model.modules())
        self._before, self._forwards, self._recording, self._calls = None, 0, False, {}
        self._pending, self._pending_grads = [], []
        self._handles = [model.register_forward_pre_hook(self._on_model_forward)]
        self._handles += [m.register_forward_hook(self._hook(n, m)) for n, m in self.layers]

    @property
    def stats(self):
        self._flush()
        return self._stats

    @property
    def grad_stats(self):
        self._flush()
        return self._grad_stats

    @property
    def last(self):
        self._flush()
        return self._last

    def _on_model_forward(self, model, inputs):
        """A new forward pass: count it, decide whether it is recorded, restart the call counts."""
        self._flush()
        self._calls = {}
        self._recording = self.record and (model.training or self.record_eval) and \
            self._forwards % self.record_every == 0
        if model.training or self.record_eval:
            self._forwards += 1

    def _append(self, table, name, record):
        rows = table.setdefault(name, [])
        rows.append(record)
        if len(rows) > self.max_records:
            del rows[0]

    def _hook(self, name, module):
        def on_forward(mod, inputs, output):
            if not self._recording:
                return
            self._calls[name] = self._calls.get(name, 0) + 1
            row = name if self._calls[name] == 1 else f"{name}#{self._calls[name]}"
            self._pending.append((row, self._kinds[name], units(output, mod, self._has_conv1d).detach()))
            tensor = output[0] if isinstance(output, (tuple, list)) else output
            tensor = tensor.data if isinstance(tensor, PackedSequence) else tensor
            if isinstance(tensor, torch.Tensor) and tensor.requires_grad:
                tensor.register_hook(lambda g: self._pending_grads.append((row, mod, g.detach())))

        return on_forward

    def _flush(self):
        """Turn the tensors the hooks kept into statistics, layers of the same shape together."""
        pending, self._pending = self._pending, []
        groups = {}
        for row, kind, h in pending:
            groups.setdefault((h.shape, h.dtype, h.device), []).append((row, kind, h))
        for items in groups.values():
            H = torch.stack([h for _, _, h in items]).float()
            new = [i for i, (row, _, _) in enumerate(items) if row not in self.edges]
            if new:  # fixed bins per layer, so that its histograms line up over time
                lo, hi = H[new].amin(dim=(1, 2)).tolist(), H[new].amax(dim=(1, 2)).tolist()
                for i, a, b in zip(new, lo, hi):
                    pad = 0.1 * (b - a) + 1e-6
                    self.edges[items[i][0]] = (a - pad if a < 0 else a, b + pad)
            lo = torch.tensor([self.edges[row][0] for row, _, _ in items], device=H.device)
            hi = torch.tensor([self.edges[row][1] for row, _, _ in items], device=H.device)
            for (row, kind, h), values in zip(items, _group_stats(H, [k for _, k, _ in items], lo, hi)):
                mean, std, near_zero, saturated, dead = values[:5]
                self._append(self._stats, row, {
                    "mean": mean, "std": std, "near_zero": near_zero,
                    "saturated": saturated if kind in ("tanh", "rnn", "sigmoid") else None,
                    "dead": dead if kind in ("relu", "leaky_relu", "pre") else None, "hist": values[5:]})
                if self.keep_last:
                    self._last[row] = h
        grads, self._pending_grads = self._pending_grads, []
        groups = {}
        for row, mod, g in grads:
            g = units(g, mod, self._has_conv1d)
            groups.setdefault((g.shape, g.dtype, g.device), []).append((row, g))
        for items in groups.values():
            G = torch.stack([g for _, g in items]).flatten(1).double()  # vanished gradients squared underflow float32
            n = G.shape[1]
            mean = G.mean(dim=1)
            std = (((G * G).mean(dim=1) - mean * mean).clamp_(min=0) * (n / max(n - 1, 1))).sqrt()
            for (row, g), m, sd in zip(items, mean.tolist(), std.tolist()):
                self._append(self._grad_stats, row, {"mean": m, "std": sd})
                if self.keep_last:
                    self.last_grad[row] = g

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
        self._flush()
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def table(self):
        """The latest statistics per watched layer (and call), as rows of text: print it before plotting."""
        pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"
        with_grad = bool(self.grad_stats)
        rows = [[tr("layer"), tr("mean"), "std", tr("saturated"), tr("dead"), tr("near_zero")] + (["std dL/dh"] if with_grad else [])]
        pre = False
        grad_stats = self.grad_stats
        for name, history in self.stats.items():
            s = history[-1]
            dead = pct(s["dead"])
            if s["dead"] is not None and _kind(dict(self.layers).get(name.split("#")[0])) == "pre":
                dead, pre = dead + "*", True
            row = [name, f"{s['mean']:.3f}", f"{s['std']:.3f}", pct(s["saturated"]), dead, pct(s["near_zero"])]
            if with_grad:
                g = grad_stats.get(name)
                row.append(f"{g[-1]['std']:.2e}" if g else "-")
            rows.append(row)
        return format_table(rows) + ("\n" + tr("pre_activation_note") if pre else "")
