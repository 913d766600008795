"""ck.doctor: the course's checklist for a network that does not train, as one call.

The order is the order of a careful debugging session (Karpathy's "recipe", CS231n's sanity
checks): first the data and the loss, then the network at init, forward and backward, then a few
real steps, and last the question whether it can learn at all (overfit one small batch). Each check
gives one finding with the numbers behind it and the lesson that explains it; fix the first
problem first, because it often causes the ones below it. Everything runs on copies of the model.
"""

import contextlib
import copy
import io
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .diagnostics import INPUT_SCALE, _cast_like, diagnose
from .i18n import tr
from .monitor import Monitor, _kind
from .training import OPTIMIZERS, train
from .validate import check_choice, check_data, check_int, check_module, check_positive, first_forward

INPUT_TINY = 1e-2  # std of the inputs below this: they barely move the first layer
SATURATED = 0.5  # a layer with more than half of its values in the flat tails of tanh / sigmoid
DEAD = 0.9  # a layer with more than 90 % of its units dead for every example of the batch
COLLAPSE = 1e-2  # spread between examples at the last hidden layer / at the first, below this: the input is lost
INIT_LOSS_MARGIN = 1.0  # loss at init above ln(C) + 1: the outputs are confidently wrong
SUMMED = 1.5  # loss of 2n examples / the mean of its two halves' losses: exactly 1 for a mean, 2 for a sum
GRADCHECK_ERROR = 1e-2  # relative error of backprop against central differences in float64
UPDATE_LARGE, UPDATE_SMALL, UPDATE_TINY = 1e-1, 1e-5, 1e-6  # update:data per step (about 1e-3 is healthy)
UPDATED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.RNNBase)  # update:data is read here (not embeddings)
GROWTH = 10.0  # gradient norm at the last step / first step above this: it grows


@dataclass
class Finding:
    """One line of the report. level: "ok", "warn" or "fail"; key names what was found; detail
    holds what the check measured where it has more to show (forward: the spread between examples
    per layer, {layer: value}, when no layer is dead or saturated; backward: its ck.Verdict)."""

    check: str
    level: str
    key: str
    text: str
    lesson: str
    detail: object = None

    @property
    def ok(self):
        return self.level == "ok"

    def __str__(self):
        mark = {"ok": "✓", "warn": "!", "fail": "✗"}[self.level]
        return tr("doc_line", mark=mark, check=tr("doc_check_" + self.check), text=self.text,
                  lesson=tr("doc_lesson", lesson=self.lesson))


@dataclass
class Report:
    """What ck.doctor found, one finding per check, in the checklist's order."""

    findings: list
    header: str

    @property
    def problems(self):
        """The failed checks, then the warnings, each in the checklist's order: fix the first one first."""
        return [f for f in self.findings if f.level == "fail"] + [f for f in self.findings if f.level == "warn"]

    def __getitem__(self, check):
        return next(f for f in self.findings if f.check == check)

    def __str__(self):
        problems = self.problems
        if problems and problems[0].level == "fail":
            tail = tr("doc_first_problem", check=tr("doc_check_" + problems[0].check))
        else:
            tail = tr("doc_only_warnings" if problems else "doc_all_clear")
        return "\n".join([self.header] + [str(f) for f in self.findings] + [tail, tr("doc_not_seen")])

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def _finding(check, level, key, lesson, **values):
    return Finding(check, level, key, tr(f"doc_{key}", **values), lesson)


def check_inputs(X):
    """Floating inputs should have mean about 0 and std about 1 (lesson 04, section 1)."""
    if not X.is_floating_point():
        return _finding("inputs", "ok", "inputs_ids", "04 §1")
    mean, std = X.mean().item(), X.std().item() if X.numel() > 1 else 0.0
    key = "inputs_scale" if abs(mean) > INPUT_SCALE or std > INPUT_SCALE else "inputs_tiny" if std < INPUT_TINY else "inputs_ok"
    return _finding("inputs", "ok" if key == "inputs_ok" else "fail", key, "04 §1", mean=mean, std=std)


def check_loss(model, X, y, loss_fn):
    """A mean over examples is the average of the losses of the two halves of a batch; a sum is
    their sum, twice as much, and its gradient grows with the batch size. Returns the finding and
    (the loss per example, the outputs) for the loss at init."""
    n = min(32, len(X) // 2)
    out = model(X[:2 * n])
    first, second, both = (loss_fn(out[part], y[part]).item() for part in (slice(0, n), slice(n, 2 * n), slice(0, 2 * n)))
    growth = both / ((first + second) / 2) if first + second > 0 else 1.0
    if growth > SUMMED:
        return (_finding("loss", "fail", "loss_summed", "03 §3", first=first, second=second, both=both, n=n, growth=growth),
                (both / (2 * n), out))
    return _finding("loss", "ok", "loss_mean", "03 §3", first=first, second=second, both=both, n=n), (both, out)


def check_init_loss(loss, out, y):
    if y.is_floating_point() or out.ndim < 2:
        return _finding("init_loss", "ok", "init_loss_skipped", "03 §3")
    classes = out.shape[-1]
    expected, spread = math.log(classes), out.detach().std(dim=-1).mean().item()
    if not math.isfinite(loss) or loss > expected + INIT_LOSS_MARGIN:
        return _finding("init_loss", "fail", "init_loss_high", "03 §3", loss=loss, classes=classes, expected=expected,
                        spread=spread)
    return _finding("init_loss", "ok", "init_loss_ok", "03 §3", loss=loss, classes=classes, expected=expected, spread=spread)


def spread(h):
    """How much a layer's outputs differ between examples: the std over the batch of each unit, averaged."""
    h = h.detach().double().flatten(1) if h.ndim > 1 else h.detach().double()[:, None]
    return h.std(dim=0).mean().item() if len(h) > 1 else 0.0


def check_forward(model, X):
    """Per layer: the share of saturated values (tanh, sigmoid), of dead units (ReLU), and how much the
    outputs still differ between examples. When that spread shrinks by over 100x from the first hidden
    layer to the last, the later layers hardly see the input (the forward face of a vanishing gain)."""
    with Monitor(model) as monitor:
        model(X)
    stats = {name: records[-1] for name, records in monitor.stats.items()}
    outputs = monitor.last
    last = list(stats)[-1] if stats else None
    if last is not None and _kind(dict(monitor.layers).get(last.split("#")[0])) == "pre":
        stats[last] = {**stats[last], "dead": None}  # the output layer: no ReLU follows it, nothing can die
        outputs = {n: h for n, h in outputs.items() if n != last}
    dead = {n: s["dead"] for n, s in stats.items() if s["dead"] is not None}
    saturated = {n: s["saturated"] for n, s in stats.items() if s["saturated"] is not None}
    worst_dead = max(dead, key=dead.get, default=None)
    worst_sat = max(saturated, key=saturated.get, default=None)
    if worst_dead is not None and dead[worst_dead] > DEAD:
        n_dead = sum(v > DEAD for v in dead.values())
        return _finding("forward", "fail", "forward_dead", "02 §7", layer=worst_dead, share=dead[worst_dead], n=n_dead)
    if worst_sat is not None and saturated[worst_sat] > SATURATED:
        n_sat = sum(v > SATURATED for v in saturated.values())
        return _finding("forward", "fail", "forward_saturated", "03 §4", layer=worst_sat, share=saturated[worst_sat],
                        n=n_sat, total=len(saturated))
    spreads = {n: spread(h) for n, h in outputs.items()}
    if len(spreads) > 1:
        (first, a), (final, b) = list(spreads.items())[0], list(spreads.items())[-1]
        if a > 0 and b / a < COLLAPSE:
            finding = _finding("forward", "fail", "forward_collapse", "02 §1, 03 §2", first=first, last=final, a=a,
                               b=b, ratio=b / a)
            finding.detail = spreads
            return finding
    worst = max([v for v in dead.values()] + [v for v in saturated.values()], default=0.0)
    finding = _finding("forward", "ok", "forward_ok", "02 §4", n=len(stats), share=worst)
    finding.detail = spreads
    return finding


def check_backward(model, X, y, loss_fn, lr, optimizer):
    result = diagnose(model, X, y, loss_fn, lr=lr if optimizer == "sgd" else None)
    level = "ok" if result.kind == "healthy" else "warn" if result.kind.startswith("mild") else "fail"
    return Finding("backward", level, "backward_" + result.kind.replace(" ", "_"), result.text, "01 §3, 02 §1", result)


def _loss_at(model, params, X, y, loss_fn):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the same dropout mask at every evaluation
        return loss_fn(torch.func.functional_call(model, params, (X,)), y)


def _differences(model, params, name, d, eps, X, y, loss_fn, here):
    """L along d around w: the right and left one-sided differences and the central one."""
    at = lambda t: _loss_at(model, {**params, name: params[name] + t * eps * d}, X, y, loss_fn).item()
    up, down = at(1), at(-1)
    return (up - here) / eps, (here - down) / eps, (up - down) / (2 * eps)


def check_gradient(model, X, y, loss_fn):
    """Backprop against central differences, in float64, for every weight tensor w, along two unit
    directions d (backprop's own gradient direction, and a random one):

        (L(w + eps d) - L(w - eps d)) / (2 eps)  should equal  <dL/dw, d>        (lesson 04, section 5)

    float64 rounds L at about 1e-16, so a difference quotient carries an error of about 1e-15 / eps:
    eps = 1e-6, or 1e-3 where the derivative is too small for 1e-6 to measure (a vanishing gradient).
    Where the two one-sided differences disagree, L has a kink there (a ReLU input at exactly 0): skipped."""
    model = model.double()
    X = X.double() if X.is_floating_point() else X
    y = y.double() if y.is_floating_point() else y
    params = {n: p.detach() for n, p in model.named_parameters()}
    trained = {n: params[n].clone().requires_grad_() for n, p in model.named_parameters() if p.requires_grad}
    grads = torch.autograd.grad(_loss_at(model, {**params, **trained}, X, y, loss_fn), list(trained.values()),
                                allow_unused=True)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        here = _loss_at(model, params, X, y, loss_fn).item()
    noise = 1e-15 * max(1.0, abs(here))  # times 1/eps: the rounding error of a difference quotient
    errors, kinks, too_small = [], 0, 0
    for name, grad in zip(trained, grads):
        if grad is None:
            continue
        directions = [torch.randn(grad.shape, generator=g, dtype=torch.float64).to(grad.device)]
        if grad.norm() > 0:
            directions.insert(0, grad)
        worst = None
        for d in directions:
            d = d / d.norm()
            backprop = (grad * d).sum().item()
            for eps in (1e-6, 1e-3):
                with torch.no_grad():
                    right, left, numeric = _differences(model, params, name, d, eps, X, y, loss_fn, here)
                if max(abs(numeric), abs(backprop)) > 1e3 * noise / eps:
                    break
            else:
                if backprop != 0:  # (an exact 0 that finite differences cannot tell from 0 agrees)
                    too_small += 1
                continue
            if abs(right - left) > GRADCHECK_ERROR * max(abs(right), abs(left)):
                kinks += 1
                continue
            error = abs(numeric - backprop) / max(abs(numeric), abs(backprop))
            if worst is None or error > worst[0]:
                worst = (error, name, backprop, numeric)
        if worst is not None:
            errors.append(worst)
    wrong = [e for e in errors if e[0] > GRADCHECK_ERROR]
    if wrong:  # the weight closest to the output whose gradient is wrong: the bad backward is above it
        error, name, backprop, numeric = wrong[-1]
        return _finding("gradient", "fail", "gradient_wrong", "04 §5", name=name, backprop=backprop, numeric=numeric,
                        error=error, n=len(wrong), total=len(errors))
    finding = _finding("gradient", "ok", "gradient_ok", "04 §5", error=max((e[0] for e in errors), default=0.0),
                       n=len(errors))
    skipped = [tr(key, n=n) for key, n in (("doc_gradient_kinks", kinks), ("doc_gradient_too_small", too_small)) if n]
    if skipped:
        finding.text += tr("doc_gradient_skipped", skipped="; ".join(skipped))
    return finding


def check_steps(model, X, y, loss_fn, lr, optimizer, batch_size, steps):
    """A few real steps: does the loss stay finite, does the gradient norm grow, how much does one
    step change each layer's weights (update:data, about 1e-3 is healthy: lesson 03)."""
    with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(io.StringIO()):  # no "stopped at step" line
        history = train(model, X, y, steps=steps, lr=lr, optimizer=optimizer, batch_size=batch_size, loss_fn=loss_fn,
                        record_every=1, progress=False)
    norms = history.grad_norm
    if history.diverged:
        return _finding("steps", "fail", "steps_diverged", "01 §4", step=history.stop_step,
                        first=norms[0] if norms else math.nan)
    layers = {f"{name}.{p}".lstrip(".") for name, module in model.named_modules() if isinstance(module, UPDATED_LAYERS)
              for p, _ in module.named_parameters(recurse=False) if p.startswith("weight")}
    ratios = {n: 10 ** (sum(r) / len(r)) for n, r in history.update_ratio.items() if r and n in layers}
    big = max(ratios, key=ratios.get, default=None)
    small = min(ratios, key=ratios.get, default=None)
    growth = norms[-1] / norms[0] if norms[0] > 0 else math.inf
    values = dict(first=norms[0], last=norms[-1], steps=len(norms), layer=big, big=ratios.get(big, math.nan),
                  small_layer=small, small=ratios.get(small, math.nan), lr=lr, optimizer=optimizer)
    if big is not None and ratios[big] > UPDATE_LARGE:
        return _finding("steps", "fail", "steps_update_large", "03 §9", **values)
    if growth > GROWTH:
        return _finding("steps", "fail", "steps_grad_grows", "01 §4", growth=growth, **values)
    if small is not None and ratios[small] < 1e-29:  # the log10 ratios carry a floor of 1e-30 for a zero update
        return _finding("steps", "fail", "steps_update_zero", "02 §2", **values)
    if small is not None and ratios[small] < UPDATE_TINY:  # a million steps to change that layer by its own size
        return _finding("steps", "fail", "steps_update_tiny", "02 §2", **values)
    if small is not None and ratios[small] < UPDATE_SMALL:
        return _finding("steps", "warn", "steps_update_small", "02 §2", **values)
    return _finding("steps", "ok", "steps_ok", "03 §9", **values)


def check_overfit(model, X, y, loss_fn, n=16, steps=300):
    """Can the network learn at all? Adam at 1e-3 on `n` examples should drive their loss near 0
    (CS231n's sanity check; lesson 03, section 4). If it cannot, no learning rate will help."""
    X, y = X[:n], y[:n]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.random.fork_rng(devices=[]):
        start = end = loss_fn(model(X), y).item()
        for step in range(1, steps + 1):
            loss = loss_fn(model(X), y)
            end = loss.item()
            if not math.isfinite(end) or end < min(0.1 * start, 0.5):  # diverged, or memorised: stop here
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    memorised = math.isfinite(end) and end < min(0.1 * start, 0.5)
    return _finding("overfit", "ok" if memorised else "fail", "overfit_ok" if memorised else "overfit_failed", "03 §4",
                    n=len(X), steps=step, start=start, end=end)


def doctor(model, X, y, loss_fn=F.cross_entropy, lr=0.1, optimizer="sgd", batch_size=64, steps=20):
    """Run the course's checklist on `model` with data (X, y) and the training settings you use
    (loss_fn, optimizer, lr, batch_size); return a Report with one finding per check:

        inputs     mean and std of X                          (not normalised: lesson 04)
        loss       does the loss grow with the batch size?    (a sum instead of a mean)
        init_loss  loss at init vs ln(C), spread of the logits (lesson 03)
        forward    saturated and dead units per layer          (lessons 02, 03)
        gradient   backprop vs finite differences, float64     (a wrong backward: lesson 04)
        backward   the back-propagated signal through depth    (ck.diagnose; lessons 01, 02)
        steps      `steps` real steps: finite? gradient norm? update:data per layer (lessons 01, 03)
        overfit    can it fit 16 examples with Adam?           (lesson 03)

    The model is never touched: every check works on a copy (gradients, buffers, mode and the
    random stream are as before). Fix the first problem first: it often causes the later ones.
    """
    check_module("model", model)
    check_data(X, y)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    lr, batch_size, steps = check_positive("lr", lr), check_int("batch_size", batch_size), check_int("steps", steps)
    if len(X) < 2:
        raise ValueError(tr("doc_too_few", n=len(X)))
    copy_of = lambda: copy.deepcopy(model).train()
    probe = copy_of()
    X, y = _cast_like(probe, X.detach()), _cast_like(probe, y.detach())
    batch = slice(0, min(len(X), max(batch_size, 64)))
    with torch.random.fork_rng(devices=[]):
        first_forward(probe, loss_fn, X[:2], y[:2])
        with torch.no_grad():
            loss_finding, (loss, out) = check_loss(probe, X, y, loss_fn)
        findings = [check_inputs(X), loss_finding, check_init_loss(loss, out, y)]
        findings.append(check_forward(copy_of(), X[batch]))
        findings.append(check_gradient(copy_of(), X[:8], y[:8], loss_fn))  # before anything that trusts backprop
        findings.append(check_backward(model, X[batch], y[batch], loss_fn, lr, optimizer))
        findings.append(check_steps(copy_of(), X, y, loss_fn, lr, optimizer, batch_size, steps))
        findings.append(check_overfit(copy_of(), X, y, loss_fn))
    n_params = sum(p.numel() for p in model.parameters())
    header = tr("doc_header", model=type(model).__name__, params=n_params, n=len(X), optimizer=optimizer, lr=lr,
                batch_size=batch_size)
    return Report(findings, header)
