"""Watch a network while it trains: per layer and per call, what the forward pass produces (mean,
std, saturated and dead units, a histogram) and what the backward pass sends back (dL/dh), plus the
update:data ratio, in the spirit of fastai's ActivationStats and Karpathy's makemore part 3."""

import math
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

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
SATURATING = ("tanh", "rnn", "sigmoid")  # kinds with flat tails
DYING = ("relu", "leaky_relu", "pre")  # kinds whose units can die


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


# The statistics are computed on one worker thread beside the training loop when torch leaves a core free
# (the lessons run torch on one core: ck.setup), else on the spot. Jobs run in the order they are given.
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coursekit-monitor")


def _submit(job):
    if torch.get_num_threads() < (os.cpu_count() or 1):
        return _WORKER.submit(job)
    done = Future()
    done.set_result(job())
    return done


HELD_VALUES = 2 ** 20  # values (outputs and gradients) held before they go to the worker: 4 MB of float32
MAX_BEHIND = 16  # jobs the worker may lag behind before the training loop waits for it

HIST_SAMPLE = 1024  # values per layer and record that go into its histogram (a strided sample beyond that)


def _share(excess, n):
    """The share of positive entries of `excess` per layer, by arithmetic (clamp, sign, sum), which is
    several times faster on a CPU than comparing and counting."""
    return excess.clamp_(min=0).sign_().sum(dim=1) / n


def _group_stats(H, kind, lo, hi):
    """The statistics of several layers of one kind at once: H is their outputs stacked, (layers,
    samples, units), so that a step costs a few passes over the data however many layers are watched.
    Per layer: mean, std, share near 0, share saturated (tanh, sigmoid, recurrent: else 0), share of
    dead units (ReLU, LeakyReLU, pre-activations: else 0), and a histogram."""
    n = H[0].numel()
    flat = H.flatten(1)
    mean = flat.sum(dim=1) / n
    square_mean = torch.linalg.vector_norm(flat, dim=1).square_() / n
    std = ((square_mean - mean * mean).clamp_(min=0) * (n / max(n - 1, 1))).sqrt_()  # var = E[h^2] - E[h]^2
    size = flat.abs()
    zero = torch.zeros_like(mean)
    if kind in ("tanh", "rnn"):  # |h| > SATURATION
        saturated = _share(size - SATURATION, n)
    elif kind == "sigmoid":  # within 1 - SATURATION of 0 or 1
        saturated = _share((flat - 0.5).abs_() - (SATURATION - 0.5), n)
    else:
        saturated = zero
    near_zero = _share(size.neg_().add_(0.01), n)
    top = H.amax(dim=1) if kind in DYING else None  # a dead ReLU unit's largest output is 0
    dead = zero if top is None else ((top < 0) if kind == "leaky_relu" else (top <= 0)).float().mean(dim=1)
    sample = flat[:, ::max(1, n // HIST_SAMPLE)]
    position = ((sample - lo[:, None]) * (BINS / (hi - lo).clamp_min(1e-12))[:, None]).nan_to_num_(0.0).clamp_(0, BINS - 0.5)
    position += (BINS * torch.arange(len(H), dtype=position.dtype, device=H.device))[:, None]  # layer l: bins of l
    hist = torch.bincount(position.view(-1).int(), minlength=len(H) * BINS).view(len(H), BINS)
    return torch.cat([torch.stack([mean, std, near_zero, saturated, dead], dim=1), hist.to(mean.dtype)], dim=1)


def _grad_group_stats(G):
    """Mean and std of dL/dh for several layers at once, G stacked (layers, values), in float64:
    the squares of a vanished gradient underflow float32."""
    G = G.double()
    n = G.shape[1]
    mean = G.sum(dim=1) / n
    square_mean = torch.linalg.vector_norm(G, dim=1).square_() / n
    return torch.stack([mean, ((square_mean - mean * mean).clamp_(min=0) * (n / max(n - 1, 1))).sqrt_()], dim=1)


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
    h = h[:, None] if h.ndim == 1 else h
    record = _as_record(kind, *_group_stats(h[None], kind, h.amin().reshape(1), h.amax().reshape(1))[0].tolist())
    del record["hist"]
    return record


def _as_record(kind, mean, std, near_zero, saturated, dead, *hist):
    """One layer's statistics as the Monitor keeps them: saturation only where there are flat tails,
    dead units only where a unit can die."""
    return {"mean": mean, "std": std, "near_zero": near_zero, "saturated": saturated if kind in SATURATING else None,
            "dead": dead if kind in DYING else None, "hist": list(hist)}


class Monitor:
    """Hooks that record per-layer statistics of the forward pass and of the gradient that comes back.

        with ck.Monitor(model) as mon:
            loss = loss_fn(model(X), y)
            loss.backward()
        print(mon.table())            # per layer: mean, std, % saturated, % dead, % near 0, std of dL/dh
        mon.stats["blocks.0.act"][-1] # {'mean':..., 'std':..., 'saturated':..., 'dead':..., 'hist': [...]}
        mon.grad_stats[...]           # {'mean':..., 'std':...} of dL/dh, one per backward pass
        mon.last["blocks.0.act"]      # the last batch of outputs, for histograms
        mon.last_grad["blocks.0.act"] # its dL/dh (keys in the order backward reaches them)

    A module called k times in one forward pass gets k rows (name, name#2, ...). Only forward passes
    in training mode are recorded (record_eval=True records the others too), every `record_every`-th
    of them, and each layer keeps its last `max_records` records. The hooks only keep the outputs and
    ask autograd to keep their gradients (`retain_grad`: dL/dh comes from `loss.backward()`, not from
    `torch.autograd.grad`); the statistics are computed for all layers and several steps at once, on a
    worker thread when torch leaves a core free, and waited for when they are read.
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
        self._pending, self._awaiting_grad, self._forward_chunks, self._grad_chunks, self._bins = [], [], [], [], {}
        self._batches, self._held, self._in_flight = {}, 0, deque()
        self._handles = [model.register_forward_pre_hook(self._on_model_forward)]
        self._handles += [m.register_forward_hook(self._hook(n, m)) for n, m in self.layers]

    @property
    def stats(self):
        self._flush()
        self._unpack()
        return self._stats

    @property
    def grad_stats(self):
        self._flush()
        self._unpack()
        return self._grad_stats

    @property
    def last(self):
        self._flush()
        return self._last

    def _on_model_forward(self, model, inputs):
        """A new forward pass: count it, decide whether it is recorded, restart the call counts."""
        self._flush()
        self._awaiting_grad, self._calls = [], {}  # a new forward: gradients of the last one that never came, never will
        self._recording = self.record and (model.training or self.record_eval) and \
            self._forwards % self.record_every == 0
        if model.training or self.record_eval:
            self._forwards += 1

    def _file(self, table, rows, records):
        """Append records[i] to the history of rows[i], keeping each history to max_records."""
        per_row = {}
        for row, record in zip(rows, records):
            per_row.setdefault(row, []).append(record)
        for row, new in per_row.items():
            history = table.setdefault(row, [])
            history += new
            del history[:-self.max_records]

    def _hook(self, name, module):
        def on_forward(mod, inputs, output):
            if not self._recording:
                return
            self._calls[name] = self._calls.get(name, 0) + 1
            row = name if self._calls[name] == 1 else f"{name}#{self._calls[name]}"
            tensor = output[0] if isinstance(output, (tuple, list)) else output
            tensor = tensor.data if isinstance(tensor, PackedSequence) else tensor
            self._pending.append((row, self._kinds[name], mod, tensor))
            if tensor.requires_grad:
                tensor.retain_grad()  # dL/dh arrives in tensor.grad: cheaper than a Python hook per layer

        return on_forward

    def _flush(self):
        """Hand the tensors the hooks kept to the worker: layers of the same shape and kind together,
        several steps in one job, and the gradients that have come back to them since."""
        pending, self._pending = self._pending, []
        groups = {}
        for row, kind, mod, tensor in pending:
            h = units(tensor, mod, self._has_conv1d).detach()
            groups.setdefault((kind, h.shape, h.dtype, h.device), []).append((row, h))
        for (kind, *_), items in groups.items():
            self._record_forward(kind, items)
        self._awaiting_grad += [(row, mod, t) for row, _, mod, t in pending if t.requires_grad]
        self._record_grads()
        if len(self._forward_chunks) + len(self._grad_chunks) > 100:
            self._unpack()  # file the finished statistics as records: bounded by max_records in a long run
        elif self._held > HELD_VALUES:
            self._hand_over()

    def _hold(self, key, rows, tensors):
        """Keep one step's tensors of one group until there are enough for a job; a new shape (an epoch's
        last, smaller batch) first hands over what is held, so that the records stay in step order."""
        held = self._batches.get((key, rows))
        if held and held[0].shape != tensors[0].shape:
            self._hand_over()
        self._batches.setdefault((key, rows), []).extend(tensors)
        self._held += sum(t.numel() for t in tensors)

    def _record_forward(self, kind, items):
        rows = tuple(row for row, _ in items)
        if rows not in self._bins:  # fixed bins per layer, so that its histograms line up over time
            H = torch.stack([h for _, h in items]).float()
            for row, a, b in zip(rows, H.amin(dim=(1, 2)).tolist(), H.amax(dim=(1, 2)).tolist()):
                pad = 0.1 * (b - a) + 1e-6
                self.edges.setdefault(row, (a - pad if a < 0 else a, b + pad))
            self._bins[rows] = torch.tensor([self.edges[row] for row in rows], device=H.device).T
        self._hold(kind, rows, [h for _, h in items])
        if self.keep_last:
            self._last.update(items)

    def _record_grads(self):
        """The gradients that have arrived, in the order backward reaches them (the last layer first)."""
        arrived = [(row, mod, t.grad) for row, mod, t in reversed(self._awaiting_grad) if t.grad is not None]
        if not arrived:
            return
        self._awaiting_grad = [item for item in self._awaiting_grad if item[2].grad is None]
        groups = {}
        for row, mod, g in arrived:
            groups.setdefault((g.shape, g.dtype, g.device), []).append((row, g))
        for items in groups.values():
            self._hold("grad", tuple(row for row, _ in items), [g for _, g in items])
        if self.keep_last:
            self.last_grad.update((row, units(g, mod, self._has_conv1d)) for row, mod, g in arrived)

    def _hand_over(self):
        """Give the held tensors to the worker, one job per group: its statistics, all steps at once."""
        for (kind, rows), tensors in self._batches.items():
            steps = len(tensors) // len(rows)
            if kind == "grad":
                job = _submit(lambda ts=tensors: _grad_group_stats(torch.stack(ts).flatten(1)))
                self._grad_chunks.append((rows * steps, job))
            else:
                lo, hi = (edge.repeat(steps) for edge in self._bins[rows])
                job = _submit(lambda ts=tensors, k=kind, lo=lo, hi=hi: _group_stats(torch.stack(ts).float(), k, lo, hi))
                self._forward_chunks.append((rows * steps, kind, job))
            self._in_flight.append(job)
        self._batches, self._held = {}, 0
        while len(self._in_flight) > MAX_BEHIND:  # bounded memory: wait when the worker lags behind
            self._in_flight.popleft().result()

    def _unpack(self):
        """The recorded statistics, kept as tensors while training, as one dict per layer and record."""
        self._hand_over()
        chunks, self._forward_chunks = self._forward_chunks, []
        if chunks:
            values = torch.cat([job.result().cpu() for *_, job in chunks]).tolist()
            rows = [row for rows, _, _ in chunks for row in rows]
            kinds = [kind for rows, kind, _ in chunks for _ in rows]
            self._file(self._stats, rows, [_as_record(kind, *v) for kind, v in zip(kinds, values)])
        chunks, self._grad_chunks = self._grad_chunks, []
        if chunks:
            values = torch.cat([job.result().cpu() for _, job in chunks]).tolist()
            rows = [row for rows, _ in chunks for row in rows]
            self._file(self._grad_stats, rows, [{"mean": mean, "std": std} for mean, std in values])
        self._in_flight.clear()

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
