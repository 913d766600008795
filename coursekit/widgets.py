"""Interactive explorers (ipywidgets 8): change a setting, see what the gradients do. Each is
one line in a notebook:

    ck.explore_depth()      depth x activation x init -> activation histograms and gradient norms of one pass
    ck.explore_batchnorm()  BatchNorm on/off x learning rate x init -> loss curves and per-layer gradient norms
    ck.explore_clipping()   clipping mode x threshold on an exploding run -> gradient norm and loss over the steps
    ck.explore_loss_scale(model, X, y)   float16 / bfloat16 x loss scale -> the share of a real gradient lost

How they draw: every setting is computed once (functools.lru_cache) and drawn on one persistent
matplotlib Figure, rendered as a PNG into an ipywidgets.Image. A change swaps the picture in
place: no flicker, and no Output widget whose contents could leak into the cell when no frontend
is attached. The cell has a single output, the widget, which carries a PNG of the default setting
and a line of text as fallbacks: a viewer without a kernel (nbconvert, GitHub) shows the picture,
and nbval sees the same output on every run.
"""

import base64
import contextlib
import functools
import io

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import display
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from .data import load_data
from .diagnostics import diagnose
from .monitor import Monitor
from .i18n import get_language, tr
from .models import mlp
from .plots import plot_float_range
from .precision import LOW_PRECISION, full_precision_gradient, lost_fraction, low_precision_gradient, overflow_fraction
from .tinytransformer import token_cross_entropy
from .training import train
from .validate import check_choice, check_int, check_positive

SEED = 0
BATCH = 256  # the fixed batch of explore_depth
DPI = 80

DEPTH_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu")
DEPTH_INITS = ("default", "normal", "lecun", "xavier", "kaiming")
MAX_DEPTH = 30
STD_RANGE = (0.01, 10.0)

BN_LRS = (0.01, 0.1, 1.0)
BN_INITS = {"default": ("default", None), "xavier": ("xavier", None), "N(0, 1)": ("normal", 1.0)}
BN_STEPS = 100

CLIP_MODES = ("none", "value", "norm")
CLIP_THRESHOLDS = (0.01, 0.1, 1.0, 10.0, 100.0)
CLIP_STEPS = 100

SCALE_EXPONENTS = tuple(range(0, 33, 2))  # S = 2^0 .. 2^32


# ---------------------------------------------------------------- the explorer: controls above a picture

class Explorer:
    """Controls above a picture: any change calls draw(figure, **settings) on one persistent
    Figure and shows it as a PNG in `image`. Each picture is drawn once: going back to a
    setting shows the PNG drawn before."""

    def __init__(self, controls, draw, figsize):
        self.controls = controls
        self.figure = Figure(figsize=figsize, dpi=DPI)  # not pyplot's: nothing shows it behind our back
        self._draw = draw
        self._png = functools.lru_cache(maxsize=128)(self._render)
        self.image = widgets.Image(format="png")
        self.box = widgets.VBox([widgets.HBox(list(controls.values()), layout={"flex_flow": "row wrap"}), self.image])
        for control in controls.values():
            control.observe(self.update, names="value")
        self.update()

    def settings(self):
        return {name: control.value for name, control in self.controls.items()}

    def update(self, change=None):
        self.image.value = self._png(tuple(self.settings().items()), get_language())

    def _render(self, settings, language):
        self.figure.clear()
        with _one_thread():
            self._draw(self.figure, **dict(settings))
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        """The widget, plus fallbacks for viewers without a kernel: a PNG of the current
        picture and one line of text (the same on every run)."""
        bundle = self.box._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        bundle["text/plain"] = tr("explorer_static")
        return bundle


@contextlib.contextmanager
def _one_thread():
    """The explorers' models are tiny: one thread is faster than two on a busy 2-core machine
    (torch's threads wait for each other)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=1)
def _data():
    """A fixed subset of Fashion-MNIST: 2000 training images."""
    X, y, _, _ = load_data("fashion_mnist", n_train=2000, n_test=1, seed=SEED)
    return X, y


def _seeded_mlp(**options):
    """ck.mlp with weights from seed SEED; the notebook's own random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return mlp(**options)


def _between(name, value, low, high, check):
    value = check(name, value)
    if not low <= value <= high:
        raise ValueError(tr("bad_range", name=name, low=low, high=high, value=value))
    return value


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(tr("bad_choice", name=name, allowed=[False, True], value=value))
    return value


def _log_y(ax, values=None):
    """Log y axis without minor ticks, labels as plain text (faster to draw). With `values`: log only when
    they span more than a factor 20, else linear."""
    finite = [v for v in values or [] if np.isfinite(v) and v > 0]
    if values is None or (finite and max(finite) > 20 * min(finite)):
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(_sci))  # plain text: 10^k in mathtext costs ~20 ms a label


def _sci(value, position=None):
    """1e+04 -> '1e4', 0.2 -> '2e-1'."""
    return f"{value:.0e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


WIDE = {"description_width": "initial"}  # the whole label, in every language


def _dropdown(key, options, value):
    return widgets.Dropdown(options=options, value=value, description=tr(key), style=WIDE, layout={"width": "200px"})


def _slider(key, options, value):
    return widgets.SelectionSlider(options=options, value=value, description=tr(key), continuous_update=False, style=WIDE)


# ---------------------------------------------------------------- explore_depth

def depth_pass(depth, activation, init, std):
    """ck.mlp on the fixed batch: the activations of every layer (flattened, on the CPU) and their
    statistics from one forward pass, and the verdict on the back-propagated signal (in the current language)."""
    return _depth_pass(depth, activation, init, std, get_language())


@functools.lru_cache(maxsize=256)
def _depth_pass(depth, activation, init, std, lang):
    X, y = _data()
    model = _seeded_mlp(depth=depth, width=64, activation=activation, init=init, std=std)
    with Monitor(model) as monitor, torch.no_grad():
        model(X[:BATCH])
    activations = {name: h.flatten().double().cpu().numpy() for name, h in monitor.last.items()}
    stats = {name: history[-1] for name, history in monitor.stats.items()}
    return activations, stats, diagnose(model, X[:BATCH], y[:BATCH])


def _spread(n, k=6):
    """Up to k indices from 0 to n-1, evenly spread (first and last included)."""
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if n > 1 else [0]


def _layer_label(i, s):
    """'layer 3\nσ=0.95, saturated 80%': the layer's spread, and its saturated (tanh, sigmoid) or dead (ReLU) share."""
    label = f"{tr('layer_n', layer=i + 1)}\nσ={s['std']:.2g}"
    if s["saturated"] is not None:
        label += f", {tr('saturated')} {100 * s['saturated']:.0f}%"
    if s["dead"] is not None:
        label += f", {tr('dead')} {100 * s['dead']:.0f}%"
    return label


def draw_depth(fig, depth, activation, init, std):
    """Left: histograms of a few layers' activations, stacked, on one shared value axis (two axes
    in all: every extra axes costs ~30 ms to draw). Right: activation std and weight-gradient norm per layer."""
    activations, stats, result = depth_pass(depth, activation, init, std if init == "normal" else None)
    norms = result.norms
    names = list(activations)
    shown = [names[i] for i in _spread(len(names))]
    values = {n: activations[n][np.isfinite(activations[n]) & (activations[n] != 0)] for n in shown}  # ReLU's zeros: see 'dead'
    lo = min((v.min() for v in values.values() if v.size), default=-1.0)
    hi = max((v.max() for v in values.values() if v.size), default=1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1, 61)
    ax_hist, ax_norms = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    for row, name in enumerate(shown):
        counts = np.histogram(values[name], bins=edges)[0]
        ax_hist.stairs(row + 0.9 * counts / max(counts.max(), 1), edges, baseline=row, fill=True, alpha=0.8)
    ax_hist.set_yticks(range(len(shown)), [_layer_label(names.index(n), stats[n]) for n in shown], fontsize=9)
    ax_hist.set(xlabel=tr("value"), title=tr("activation_histograms"))
    ax_hist.grid(False)
    spread = [max(stats[n]["std"], 1e-30) for n in names]
    ax_norms.plot(range(1, len(names) + 1), spread, "o-", color="C2", label=tr("activation_std"))
    ax_norms.plot(range(1, len(norms) + 1), [max(v, 1e-30) for v in norms.values()], "o-", color="C3",
                  label=tr("signal_rms"))
    _log_y(ax_norms)
    ax_norms.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_norms.set(xlabel=tr("layer"), title=tr("per_layer"))
    ax_norms.legend(fontsize=8)
    fig.suptitle(result.text, fontsize=9)
    fig.subplots_adjust(left=0.2, right=0.98, bottom=0.12, top=0.84, wspace=0.2)


def depth_explorer(depth=10, activation="tanh", init="normal", std=1.0):
    """The Explorer behind explore_depth (tests and benchmarks use it without displaying it)."""
    depth = _between("depth", depth, 1, MAX_DEPTH, check_int)
    check_choice("activation", activation, DEPTH_ACTIVATIONS)
    check_choice("init", init, DEPTH_INITS)
    std = _between("std", std, *STD_RANGE, check_positive)
    controls = {
        "depth": widgets.IntSlider(value=depth, min=1, max=MAX_DEPTH, description=tr("depth"), continuous_update=False,
                                   style=WIDE),
        "activation": _dropdown("activation", DEPTH_ACTIVATIONS, activation),
        "init": _dropdown("init", DEPTH_INITS, init),
        "std": widgets.FloatLogSlider(value=std, base=10, min=-2, max=1, step=0.1, description="std",
                                      readout_format=".2g", continuous_update=False, disabled=init != "normal", style=WIDE),
    }
    controls["init"].observe(lambda change: setattr(controls["std"], "disabled", change.new != "normal"), names="value")
    return Explorer(controls, draw_depth, figsize=(10, 4))


def explore_depth(depth=10, activation="tanh", init="normal", std=1.0):
    """Depth x activation x init (std for init='normal'): per-layer activation histograms, their
    spread, and the back-propagated signal (RMS of dL/dh) of ONE forward/backward pass on a fixed batch of
    Fashion-MNIST. The arguments are the controls' starting values."""
    display(depth_explorer(depth, activation, init, std))


# ---------------------------------------------------------------- explore_batchnorm

@functools.lru_cache(maxsize=64)
def batchnorm_run(batchnorm, lr, init):
    """100 SGD steps of a deep sigmoid MLP (depth 10, width 32), with or without BatchNorm."""
    X, y = _data()
    scheme, std = BN_INITS[init]
    model = _seeded_mlp(depth=10, width=32, activation="sigmoid", init=scheme, std=std, norm="batch" if batchnorm else None)
    with contextlib.redirect_stdout(io.StringIO()):  # the legend says where a run diverged
        return train(model, X, y, steps=BN_STEPS, lr=lr, batch_size=64, record_every=BN_STEPS - 1, progress=False,
                     seed=SEED)


def _bn_label(batchnorm):
    return tr("with_bn") if batchnorm else tr("without_bn")


def draw_batchnorm(fig, batchnorm, lr, init):
    ax_loss, ax_grad = fig.subplots(1, 2)
    for bn in (not batchnorm, batchnorm):  # the chosen run last, on top
        h = batchnorm_run(bn, lr, init)
        chosen = bn == batchnorm
        style = dict(color="C1" if bn else "C0", lw=2.2 if chosen else 1, alpha=1 if chosen else 0.45)
        ending = tr("nan_at_step", step=h.stop_step) if h.diverged else f"{tr('final_loss')} {h.final_loss:.2f}"
        ax_loss.plot(h.loss, label=f"{_bn_label(bn)} ({ending})", **style)
    _log_y(ax_loss, batchnorm_run(True, lr, init).loss + batchnorm_run(False, lr, init).loss)
    ax_loss.set(xlabel=tr("step"), ylabel=tr("loss"), title=f"{tr('loss_curves')}: lr={lr:g}, {tr('init')} {init}")
    ax_loss.legend(fontsize=8)
    h = batchnorm_run(batchnorm, lr, init)
    for i, step in enumerate(h.recorded_steps):
        values = [max(v[i], 1e-30) for v in h.layer_grad_norms.values()]
        ax_grad.plot(range(1, len(values) + 1), values, "o-", label=tr("step_n", step=step))
    _log_y(ax_grad)
    ax_grad.set(xlabel=tr("layer"), ylabel=tr("grad_norm"), title=f"{tr('grad_norm_per_layer')}\n{_bn_label(batchnorm)}")
    ax_grad.legend(fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.84, wspace=0.25)


def batchnorm_explorer(batchnorm=False, lr=0.1, init="default"):
    """The Explorer behind explore_batchnorm. Computes the whole grid first (18 short runs)."""
    _check_bool("batchnorm", batchnorm)
    check_choice("lr", lr, BN_LRS)
    check_choice("init", init, BN_INITS)
    with _one_thread():
        for settings in [(bn, r, i) for bn in (False, True) for r in BN_LRS for i in BN_INITS]:
            batchnorm_run(*settings)
    controls = {
        "batchnorm": widgets.ToggleButtons(options=[(tr("without_bn"), False), (tr("with_bn"), True)], value=batchnorm,
                                           style={"button_width": "auto"}),
        "lr": _slider("learning_rate", BN_LRS, lr),
        "init": _dropdown("init", list(BN_INITS), init),
    }
    return Explorer(controls, draw_batchnorm, figsize=(10, 3.6))


def explore_batchnorm(batchnorm=False, lr=0.1, init="default"):
    """BatchNorm on/off x learning rate x init: loss curves of short training runs of a deep
    sigmoid MLP, and its per-layer gradient norms at the first and the last step. The runs are
    computed once, when the explorer starts: the controls only choose among them."""
    display(batchnorm_explorer(batchnorm, lr, init))


# ---------------------------------------------------------------- explore_clipping

@functools.lru_cache(maxsize=32)
def clipping_run(mode, threshold):
    """The exploding run: ck.mlp(depth=4, width=64, relu, N(0, 1)), SGD lr=0.01, clipped or not."""
    X, y = _data()
    model = _seeded_mlp(depth=4, width=64, activation="relu", init="normal", std=1.0)
    clip = None if mode == "none" else (mode, threshold)  # mode "none": threshold is None
    with contextlib.redirect_stdout(io.StringIO()):  # the legend says where a run diverged
        return train(model, X, y, steps=CLIP_STEPS, lr=0.01, batch_size=64, clip=clip, monitor=False, progress=False,
                     seed=SEED)


def draw_clipping(fig, mode, threshold):
    ax_grad, ax_loss = fig.subplots(1, 2)
    runs = {tr("clip_none"): clipping_run("none", None)}
    if mode != "none":
        runs[f"{tr('clip_' + mode)}, {tr('threshold')} {threshold:g}"] = clipping_run(mode, threshold)
    for i, (name, h) in enumerate(runs.items()):
        style = dict(lw=2.2 if i == len(runs) - 1 else 1, alpha=1 if i == len(runs) - 1 else 0.5, color=f"C{i}")
        ending = tr("nan_at_step", step=h.stop_step) if h.diverged else f"{tr('final_loss')} {h.final_loss:.3g}"
        ax_grad.plot(h.grad_norm, label=name, **style)
        ax_loss.plot(h.loss, label=f"{name} ({ending})", **style)
        if h.diverged:
            ax_loss.plot(len(h.loss) - 1, h.loss[-1], "x", color=style["color"], markersize=10, mew=2)
    if mode == "norm":
        ax_grad.axhline(threshold, color="k", ls="--", lw=1, label=f"{tr('threshold')} = {threshold:g}")
    _log_y(ax_grad)
    _log_y(ax_loss)
    ax_grad.set(xlabel=tr("step"), ylabel=tr("grad_norm"), title=tr("grad_norm_before_clip"))
    ax_loss.set(xlabel=tr("step"), ylabel=tr("loss"), title=tr("loss_curves"))
    ax_grad.legend(fontsize=8)
    ax_loss.legend(fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.9, wspace=0.25)


def clipping_explorer(mode="norm", threshold=10.0):
    """The Explorer behind explore_clipping. Computes every (mode, threshold) run first."""
    check_choice("mode", mode, CLIP_MODES)
    check_choice("threshold", threshold, CLIP_THRESHOLDS)
    with _one_thread():
        clipping_run("none", None)
        for settings in [(m, t) for m in CLIP_MODES[1:] for t in CLIP_THRESHOLDS]:
            clipping_run(*settings)
    controls = {
        "mode": widgets.ToggleButtons(options=[(tr("clip_" + m), m) for m in CLIP_MODES], value=mode,
                                      description=tr("clip_mode"), style={"button_width": "auto", **WIDE}),
        "threshold": _slider("threshold", CLIP_THRESHOLDS, threshold),
    }
    return Explorer(controls, draw_clipping, figsize=(10, 3.6))


def explore_clipping(mode="norm", threshold=10.0):
    """Gradient clipping on a run that explodes (ReLU MLP, N(0, 1) weights, SGD lr=0.01: NaN within
    a few steps unclipped). Mode none / value (clip every gradient entry to ±threshold) / norm
    (rescale the whole gradient to norm <= threshold): the gradient norm before clipping, and the loss."""
    display(clipping_explorer(mode, threshold))


# ---------------------------------------------------------------- explore_loss_scale

class LossScaleExplorer:
    """The Explorer behind explore_loss_scale: the gradient of one batch, back-propagated in
    float16 or bfloat16 with the loss multiplied by S = 2^k, against the float32 gradient."""

    def __init__(self, model, X, y, loss_fn, dtype, exponent):
        self.model, self.X, self.y, self.loss_fn = model, X, y, loss_fn
        self.reference = full_precision_gradient(model, X, y, loss_fn)
        self.gradient = functools.lru_cache(maxsize=64)(self._gradient)
        controls = {
            "dtype": widgets.ToggleButtons(options=list(LOW_PRECISION), value=dtype, description="dtype",
                                           style={"button_width": "auto", **WIDE}),
            "exponent": widgets.SelectionSlider(options=[(f"2^{k}", k) for k in SCALE_EXPONENTS], value=exponent,
                                                description="S", style=WIDE),
        }
        self.explorer = Explorer(controls, self.draw, figsize=(8, 3.4))

    def _gradient(self, dtype, exponent):
        with _one_thread():
            return low_precision_gradient(self.model, self.X, self.y, self.loss_fn, dtype, 2.0 ** exponent)

    def draw(self, fig, dtype, exponent):
        low = self.gradient(dtype, exponent)
        plot_float_range(self.reference, dtype, 2.0 ** exponent, lost=lost_fraction(low, self.reference),
                         overflow=overflow_fraction(low), ax=fig.subplots(), title=tr("loss_scale_title"))
        fig.subplots_adjust(left=0.09, right=0.98, bottom=0.15, top=0.9)


def loss_scale_explorer(model, X, y, loss_fn=token_cross_entropy, dtype="float16", exponent=0):
    check_choice("dtype", dtype, LOW_PRECISION)
    check_choice("exponent", exponent, SCALE_EXPONENTS)
    return LossScaleExplorer(model, X, y, loss_fn, dtype, exponent).explorer


def explore_loss_scale(model, X, y, loss_fn=token_cross_entropy, dtype="float16", exponent=0):
    """float16 or bfloat16 x loss scale S = 2^exponent: the gradient of loss_fn(model(X), y),
    back-propagated by a copy of the model held in that type, against the float32 gradient: the
    share of entries lost to 0 and turned into inf, and the window of magnitudes the type keeps."""
    display(loss_scale_explorer(model, X, y, loss_fn, dtype, exponent))
