"""One training loop for every lesson: minibatch SGD or Adam on tensors, optional gradient
clipping, a progress bar, and a history of the loss and of the diagnostics at every step.
It stops at the first NaN/Inf loss and returns what it has."""

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .diagnostics import weight_parameters
from .monitor import Monitor
from .i18n import tr
from .validate import check_choice, check_data, check_int, check_module, check_nonnegative, check_positive, first_forward

OPTIMIZERS = ("sgd", "adam")
AUTOCAST_DTYPES = (None, torch.float16, torch.bfloat16)
SCALER_METHODS = ("scale", "unscale_", "step", "update", "get_scale")  # torch.amp.GradScaler's


@dataclass
class History:
    """What happened during `train`: one entry per step in each list."""

    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)  # global gradient norm, before clipping
    weight_norm: list = field(default_factory=list)  # global norm of all weights, after the step
    # per-layer diagnostics, one entry per recorded step (every `record_every` steps):
    recorded_steps: list = field(default_factory=list)
    layer_grad_norms: dict = field(default_factory=dict)  # {weight name: [norm]}
    update_ratio: dict = field(default_factory=dict)  # {weight name: [log10 ratio]}
    act_stats: dict = field(default_factory=dict)  # {layer name: [stats]}, each with a histogram ('hist')
    act_edges: dict = field(default_factory=dict)  # {layer name: (low, high)}: the range of those histograms
    grad_stats: dict = field(default_factory=dict)  # {layer name: [mean and std of dL/dh]}
    lr: list = field(default_factory=list)  # the learning rate of each step (warmup)
    loss_scale: list = field(default_factory=list)  # with a scaler: its scale S after each step
    skipped_steps: list = field(default_factory=list)  # with a scaler: steps skipped for an inf/NaN gradient
    diverged: bool = False
    stop_step: int = None  # the step whose loss was NaN/Inf

    @property
    def final_loss(self):
        return self.loss[-1] if self.loss else math.nan

    def __repr__(self):
        if self.diverged:
            return tr("history_diverged", steps=len(self.loss), step=self.stop_step)
        return tr("history_finished", steps=len(self.loss), loss=self.final_loss)


def _check_clip(clip):
    ok = clip is None or (isinstance(clip, tuple) and len(clip) == 2 and clip[0] in ("norm", "value")
                          and isinstance(clip[1], (int, float)) and not isinstance(clip[1], bool) and clip[1] > 0)
    if not ok:
        raise ValueError(tr("clip_format", value=clip))


def make_optimizer(model, name="sgd", lr=0.1, momentum=0.0, weight_decay=0.0):
    """torch.optim.SGD or Adam. weight_decay adds the L2 penalty lambda/2 * ||W||^2 to the loss
    (PyTorch adds lambda * W to the gradient: the same thing)."""
    check_choice("optimizer", name, OPTIMIZERS)
    lr = check_positive("lr", lr)
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=check_nonnegative("momentum", momentum),
                               weight_decay=weight_decay)
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


def train(model, X, y, steps=200, lr=0.1, batch_size=64, optimizer="sgd", momentum=0.0, weight_decay=0.0,
          clip=None, penalty=None, after_step=None, loss_fn=F.cross_entropy, monitor=True, record_every=10,
          warmup=0, scaler=None, autocast=None, seed=0, progress=True, desc=None):
    """Train `model` on tensors (X, y) for `steps` minibatch steps; return a History.

    clip: None, ("norm", max_norm) -> clip_grad_norm_, or ("value", v) -> clip_grad_value_.
    penalty(model) -> tensor: added to the loss (e.g. an L1 term written in the lesson).
    after_step(model): called after each optimizer step (e.g. a max-norm constraint).
    warmup: the learning rate rises linearly from lr/warmup to lr over the first `warmup` steps.
    scaler: a torch.amp.GradScaler, or an object with its five methods: the loss is multiplied by
            its scale S before backward, the gradients divided by S (unscale_) before the norm is
            recorded and clipped, and a step with an inf/NaN gradient is skipped (S halves; it
            doubles after growth_interval good steps). A step counts as skipped when S went down.
    autocast: None, torch.float16 or torch.bfloat16: the forward pass under torch.autocast.
    monitor: record per-layer statistics (activation stats, weight-gradient norms, update:data
             ratio) every `record_every` steps, and at step 0; loss, global gradient norm and
             weight norm are recorded at every step in any case.
    """
    check_module("model", model)
    check_data(X, y)
    steps = check_int("steps", steps)
    batch_size = check_int("batch_size", batch_size)
    record_every = check_int("record_every", record_every)
    _check_clip(clip)
    warmup = check_int("warmup", warmup, low=0)
    if scaler is not None and not all(callable(getattr(scaler, m, None)) for m in SCALER_METHODS):
        raise TypeError(tr("scaler_type", value=type(scaler).__name__))
    check_choice("autocast", autocast, AUTOCAST_DTYPES)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(tr("no_params", model=type(model).__name__))
    opt = make_optimizer(model, optimizer, lr, momentum, weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup)) if warmup else None
    device = params[0].device
    X, y = X.to(device), y.to(device)
    weights = weight_parameters(model)
    model.eval()  # a check of shapes that must not touch BatchNorm's running statistics
    with torch.no_grad():
        first_forward(model, loss_fn, X[:2], y[:2])
    mon = Monitor(model, keep_last=False) if monitor else None
    history = History()
    g = torch.Generator().manual_seed(seed)
    order, pos = torch.randperm(len(X), generator=g), 0
    model.train()
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=0.5, leave=False)
    try:
        for step in bar:
            if pos + batch_size > len(X):
                order, pos = torch.randperm(len(X), generator=g), 0
            idx = order[pos:pos + batch_size]
            pos += batch_size
            record = monitor and step % record_every == 0
            if monitor:
                mon.record = record
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                loss = loss_fn(model(X[idx]), y[idx])
            if penalty is not None:
                loss = loss + penalty(model)
            value = loss.item()
            if not math.isfinite(value):
                history.diverged, history.stop_step = True, step
                print(tr("nan_stop", step=step, loss=value))
                break
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
            else:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)  # first unscale, then measure and clip the true gradient
            history.loss.append(value)
            history.lr.append(opt.param_groups[0]["lr"])
            history.grad_norm.append(torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None]).item())
            if record:
                history.recorded_steps.append(step)
                for name, p in weights:
                    history.layer_grad_norms.setdefault(name, []).append(p.grad.norm().item() if p.grad is not None else 0.0)
            if clip is not None and clip[0] == "norm":
                torch.nn.utils.clip_grad_norm_(params, clip[1])
            elif clip is not None:
                torch.nn.utils.clip_grad_value_(params, clip[1])
            if record:
                mon.before_step()
            if scaler is None:
                opt.step()
            else:
                scale = scaler.get_scale()
                scaler.step(opt)  # skips the step if a gradient is inf/NaN
                scaler.update()
                history.loss_scale.append(scaler.get_scale())
                if scaler.get_scale() < scale:
                    history.skipped_steps.append(step)
            if schedule is not None:
                schedule.step()
            if after_step is not None:
                with torch.no_grad():
                    after_step(model)
            if record:
                mon.after_step()
            history.weight_norm.append(torch.nn.utils.get_total_norm([p.detach() for _, p in weights]).item())
            if progress and step % 20 == 0:
                bar.set_postfix(loss=f"{value:.3g}", refresh=False)
    finally:
        bar.close()
        if mon is not None:
            mon.remove()
            history.act_stats, history.update_ratio = mon.stats, mon.update_ratio
            history.act_edges, history.grad_stats = mon.edges, mon.grad_stats
    return history


@torch.no_grad()
def evaluate(model, X, y, batch_size=1000):
    """Accuracy of `model` on (X, y), in eval mode (BatchNorm uses its running statistics)."""
    check_module("model", model)
    check_data(X, y)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = sum((model(X[i:i + batch_size].to(device)).argmax(-1) == y[i:i + batch_size].to(device)).sum().item()
                  for i in range(0, len(X), batch_size))
    model.train(was_training)
    return correct / y.numel()  # a sequence model is scored on every position
