"""The course's plots (matplotlib). Each function draws on a new figure, or on `ax` when
given one, and returns the axes."""

import math

import matplotlib.pyplot as plt
import torch
from matplotlib import font_manager
from matplotlib.ticker import MaxNLocator

from .i18n import set_plot_labels_in_english, tr
from .precision import LOW_PRECISION
from .validate import check_choice

STYLE = {"figure.figsize": (7, 3.6), "figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3,
         "axes.spines.top": False, "axes.spines.right": False}


# Fonts that draw Chinese characters: the course's own (PyPI noto-cjk-sans-otc), then common system fonts.
CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
             "Microsoft YaHei", "PingFang SC", "Heiti SC", "SimHei", "Arial Unicode MS")


def cjk_font():
    """The name of an installed font that can draw Chinese, or None."""
    try:
        import noto_cjk_sans_otc

        font_manager.fontManager.addfont(str(noto_cjk_sans_otc.FONT_PATH))
    except (ImportError, OSError, RuntimeError):
        pass
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def use_course_style(lang="en"):
    """The course's plot style. For Chinese, a CJK font joins the font list (DejaVu Sans draws the
    Latin letters, the CJK font the characters); with no CJK font anywhere, plot labels stay
    in English, with a one-line note."""
    plt.rcParams.update(STYLE)
    if lang == "zh":
        font = cjk_font()
        if font is not None:
            plt.rcParams["font.family"] = ["DejaVu Sans", font]
        else:
            set_plot_labels_in_english(True)
            print("No font for Chinese characters was found: plot labels are in English. "
                  "Install one with: pip install noto-cjk-sans-otc")


def _axes(ax, figsize=None):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _short(name):
    """'blocks.3.linear.weight' -> 'blocks.3.linear' (parameter names are long)."""
    return name[:-len(".weight")] if name.endswith(".weight") else name


def plot_grad_norms(norms, ax=None, label=None, title=None):
    """Per layer (input side on the left), log scale: the back-propagated signal a Verdict read
    (RMS of dL/dh, `verdict.norms`), or weight-gradient norms from weight_grad_norms.
    `norms`: {layer: value}, or several runs as {run: {layer: value}}."""
    ax = _axes(ax)
    runs = norms if all(isinstance(v, dict) for v in norms.values()) else {label: norms}
    weights = all(str(k).endswith(".weight") for r in runs.values() for k in r)
    for run, layer_norms in runs.items():
        values = [max(v, 1e-30) for v in layer_norms.values()]
        ax.semilogy(range(1, len(values) + 1), values, "o-", label=run)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel=tr("layer"), ylabel=tr("grad_norm" if weights else "signal_rms"),
           title=title or tr("grad_norm_per_layer" if weights else "signal_per_layer"))
    if any(k is not None for k in runs):
        ax.legend()
    return ax


def plot_losses(histories, ax=None, log=True, title=None, dashed=(), top=None):
    """Training loss of several runs side by side: `histories` is {name: History}. A run that
    diverged ends with an x at the step where its loss became NaN/Inf. The runs named in `dashed`
    are drawn dashed, so that a run lying on top of another stays visible; `top` caps the y axis,
    so that a diverging run does not flatten the others (its x then sits on the top edge)."""
    ax = _axes(ax)
    for name, h in histories.items():
        (line,) = ax.plot(h.loss, label=name, ls="--" if name in dashed else "-")
        if h.diverged and h.loss:
            last = h.loss[-1] if top is None else min(h.loss[-1], top)
            ax.plot(len(h.loss) - 1, last, "x", color=line.get_color(), markersize=10, mew=2, clip_on=False)
    if log:
        ax.set_yscale("log")
    if top is not None:
        ax.set_ylim(top=top) if log else ax.set_ylim(0, top)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel=tr("step"), ylabel=tr("loss"), title=title or tr("loss_curves"))
    ax.legend(fontsize=8)
    return ax


def plot_histograms(tensors, title=None, bins=60, log=False, figsize=None, xlim=None):
    """One histogram per layer, in a row: `tensors` is {layer: tensor} (activations from
    Monitor.last, or gradients {name: p.grad}). The legend gives mean and std.
    xlim=(low, high) gives every panel the same x range, so their widths can be compared."""
    n = len(tensors)
    fig, axes = plt.subplots(1, n, figsize=figsize or (min(2.6 * n, 15), 2.6), sharey=False, squeeze=False)
    for ax, (name, t) in zip(axes[0], tensors.items()):
        t = t.detach().flatten().float().cpu()
        t = t[torch.isfinite(t)]
        ax.hist(t.numpy(), bins=bins, color="C0", log=log, range=xlim)
        if xlim is not None:
            ax.set_xlim(*xlim)
        ax.set_title(f"{_short(name)}\nμ={t.mean():.2g} σ={t.std():.2g}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title or "", fontsize=10)
    fig.tight_layout()
    return axes[0]


def plot_magnitudes(series, title=None, bins=50):
    """Histograms of log10|value|, one panel per layer, the same x range in every panel:
    `series` is {label: {layer: tensor}} (say, the gradients at step 0 and after training).
    On a log axis, distributions 100x apart are both readable; zeros are left out."""
    layers = list(next(iter(series.values())))
    logs = {label: {name: t.detach().flatten().float().abs().log10().cpu() for name, t in tensors.items()}
            for label, tensors in series.items()}
    finite = torch.cat([v[torch.isfinite(v)] for tensors in logs.values() for v in tensors.values()])
    low = torch.quantile(finite[torch.randperm(len(finite))[:100_000]], 0.001).item()  # a few tiny values would stretch the axis
    edges = torch.linspace(low, finite.max().item(), bins + 1).numpy()
    fig, axes = plt.subplots(1, len(layers), figsize=(min(2.6 * len(layers), 15), 2.6), sharex=True, squeeze=False)
    for ax, name in zip(axes[0], layers):
        for label, tensors in logs.items():
            v = tensors[name]
            ax.hist(v[torch.isfinite(v)].numpy(), bins=edges, histtype="stepfilled", alpha=0.5, label=label)
        ax.set_title(_short(name), fontsize=8)
        ax.set_xlabel(tr("log10_magnitude"), fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title or "", fontsize=10)
    fig.tight_layout()
    return axes[0]

def plot_layer_distributions(tensors, ax=None, title=None, xlabel=None, bins=80):
    """Every layer's distribution as one line on the same axes (Karpathy's plot), coloured from
    the input side (dark) to the output side (light): `tensors` is {layer: tensor}, input side
    first. In a healthy stack the lines lie on top of each other; a fan of lines that narrows or
    widens layer by layer is a signal that shrinks or grows."""
    ax = _axes(ax)
    values = {name: t.detach().flatten().float().cpu() for name, t in tensors.items()}
    limit = max(v.abs().quantile(0.999).item() for v in values.values()) or 1.0
    colors = plt.cm.viridis(torch.linspace(0, 0.9, len(values)).numpy())
    for color, (i, (name, v)) in zip(colors, enumerate(values.items())):
        counts = torch.histc(v.clamp(-limit, limit), bins=bins, min=-limit, max=limit)
        centres = torch.linspace(-limit, limit, bins + 1)[:-1] + limit / bins
        ax.plot(centres.numpy(), (counts / counts.sum()).numpy(), color=color, lw=1.2, label=tr("layer_n", layer=i + 1))
    ax.set(xlabel=xlabel or tr("value"), ylabel=tr("share"), title=title or "")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    ax.legend(fontsize=6, ncol=2)
    return ax

def plot_saturation(h, threshold=0.99, ax=None, title=None):
    """White where |h| > threshold: rows are examples, columns are units. An all-white
    column is a unit saturated for every example: its gradient is ~0, it is dead."""
    ax = _axes(ax, figsize=(7, 3))
    ax.imshow((h.detach().abs() > threshold).cpu().numpy(), cmap="gray", interpolation="nearest", aspect="auto")
    ax.set(xlabel=tr("unit"), ylabel=tr("example"), title=title or tr("saturation", threshold=threshold))
    ax.grid(False)
    return ax


def plot_update_ratios(history, ax=None, title=None):
    """log10(std(update)/std(weight)) per weight over the steps (Karpathy's plot), with the
    healthy level -3 drawn: far below, the layer learns too slowly; far above, too fast.
    Coloured by depth, from the first layer (dark) to the last (light)."""
    ax = _axes(ax)
    n = len(history.update_ratio)
    colors = plt.cm.viridis(torch.linspace(0, 0.9, n).numpy())  # input side dark, output side light
    for i, (color, (name, ratios)) in enumerate(zip(colors, history.update_ratio.items())):
        label = _short(name) if i in (0, n - 1) else None  # the colours order the rest
        ax.plot(history.recorded_steps, ratios, label=label, color=color)
    ax.axhline(-3, color="k", ls="--", lw=1, label=tr("healthy_level"))
    ax.set(xlabel=tr("step"), ylabel="log10", title=title or tr("update_ratio"))
    ax.legend(fontsize=7)
    return ax


def plot_grad_norm_over_steps(histories, threshold=None, ax=None, title=None, dashed=()):
    """Global gradient norm per step, log scale, for {name: History}; optional clipping threshold;
    the runs named in `dashed` drawn dashed."""
    ax = _axes(ax)
    for name, h in histories.items():
        ax.semilogy(h.grad_norm, label=name, ls="--" if name in dashed else "-")
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=1, label=f"{tr('threshold')} = {threshold:.3g}")
    ax.set(xlabel=tr("step"), ylabel=tr("grad_norm"), title=title or "")
    ax.legend(fontsize=8)
    return ax


def plot_activation_history(source, layers=None, title=None):
    """fastai's "colorful dimension": for each layer, the histogram of its activations at every
    recorded step, as an image (x: step, y: value, brightness: log of the count). `source` is a
    History (ck.train records every `record_every` steps) or a Monitor."""
    stats = getattr(source, "act_stats", None) or getattr(source, "stats", {})
    edges = getattr(source, "act_edges", None) or getattr(source, "edges", {})
    names = list(stats) if layers is None else list(layers)
    if not names:
        raise ValueError(tr("no_grad_yet"))
    steps = getattr(source, "recorded_steps", None)
    fig, axes = plt.subplots(1, len(names), figsize=(min(3 * len(names), 15), 2.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        counts = torch.tensor([record["hist"] for record in stats[name]]).T
        lo, hi = edges[name]
        right = steps[len(stats[name]) - 1] if steps else len(stats[name]) - 1
        ax.imshow(torch.log1p(counts).numpy(), aspect="auto", origin="lower", cmap="viridis", extent=(0, max(right, 1), lo, hi))
        ax.set(title=name, xlabel=tr("step"))
        ax.grid(False)
    axes[0][0].set_ylabel(tr("value"))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return axes[0]


def plot_time_step_grads(curves, ax=None, title=None):
    """||dL/dx_t|| against t = 1 ... T (log scale) for {name: tensor of per-step norms}. Values of 0 or
    below 1e-30 (underflow) are drawn at 1e-30, on a dotted line that says so."""
    ax = _axes(ax)
    floor = 1e-30
    for name, g in curves.items():
        ax.semilogy(range(1, len(g) + 1), g.detach().clamp_min(floor).cpu().numpy(), label=name)
    if any(bool((g <= floor).any()) for g in curves.values()):
        ax.axhline(floor, color="gray", ls=":", lw=1, label=tr("below_floor"))
    ax.set(xlabel=tr("time_step"), ylabel=tr("grad_norm"), title=title or tr("grad_per_step"))
    ax.legend(fontsize=8)
    return ax


def plot_float_range(gradient, dtype="float16", scale=1.0, lost=None, overflow=None, ax=None, title=None):
    """Histogram of log10|g| of a float32 gradient, and the window of magnitudes that `dtype` keeps
    once the loss is multiplied by `scale`: from its smallest subnormal / scale to its largest
    value / scale. Entries left of the window underflow to 0, right of it overflow to inf.
    lost, overflow: the measured shares, written in the legend."""
    info = torch.finfo(LOW_PRECISION[check_choice("dtype", dtype, LOW_PRECISION)])
    ax = _axes(ax, (6, 3))
    values = gradient.detach().flatten().float().abs()
    values = values[values > 0].log10().cpu().numpy()
    ax.hist(values, bins=80, color="0.5", alpha=0.7, label=tr("gradient_entries"))
    low, high = math.log10(info.smallest_normal * info.eps / scale), math.log10(info.max / scale)
    label = tr("float_window", dtype=dtype, scale=scale)
    if lost is not None:
        label += "\n" + tr("float_lost", lost=lost, overflow=overflow or 0.0)
    left, right = max(min(values.min(), low) - 1, -14), min(max(values.max(), high) + 1, 10)
    ax.axvspan(max(low, left), min(high, right), color="C2", alpha=0.15, label=label)
    for x in (low, high):
        if left < x < right:
            ax.axvline(x, color="C2", lw=1.5)
    ax.set(xlabel=tr("log10_magnitude"), ylabel=tr("count"), title=title or "", xlim=(left, right))
    ax.legend(fontsize=8, loc="upper left")
    return ax
