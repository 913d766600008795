"""Every word a student sees is in their language: what the translated lessons print, and what coursekit
draws in a figure, carries no English beyond code names, PyTorch's own messages and units.

A printed line counts as English when it is, word for word, the English lesson's line of the same code cell
and holds two or more English words (three or more Latin letters, not a code name, not in CODE_WORDS); a figure
text, when it is one of the English figure's texts and holds an English word."""

import re
from pathlib import Path

import matplotlib
import nbformat
import pytest
import torch

import coursekit as ck
from coursekit import widgets
from coursekit.i18n import LANGUAGES

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted(p.name for p in (ROOT / "notebooks" / "en").glob("*.ipynb"))
OTHERS = [lang for lang in LANGUAGES if lang != "en"]

# code and math names that stay as they are in every language
CODE_WORDS = {
    "nan", "inf", "NaN", "Inf", "std", "var", "max", "min", "rms", "log", "cpu", "cuda", "torch", "seed", "device",
    "tensor", "True", "False", "None", "ReLU", "GELU", "ELU", "LSTM", "GRU", "RNN", "Adam", "SGD", "Xavier",
    "Kaiming", "LeCun", "BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm", "MLP", "sigmoid", "tanh", "relu",
    "leaky", "elu", "gelu", "LeakyReLU", "Linear", "Conv", "weight", "bias", "zeros", "constant", "eval", "train",
    "autograd", "gradcheck", "lr", "History", "PyTorch", "init", "default", "normal", "xavier", "kaiming", "mean", "head", "blocks",
}
# PyTorch's own messages and reprs, printed as PyTorch writes them
PYTORCH_OUTPUT = [
    re.compile(r"^\s*\(\w+\): \w+\("),                       # a module's repr
    re.compile(r"^\s*\)$|^\s*\w+\($"),
    re.compile(r"Expected more than 1 value per channel"),      # BatchNorm1d on a batch of one
    re.compile(r"The total norm of order"),                     # clip_grad_norm_(error_if_nonfinite=True)
]


def english_words(text):
    words = []
    for token in text.split():
        if re.search(r"[._()=/|\[\]{}\d<>∂]", token):  # code, maths, numbers
            continue
        word = token.strip(",:;!?'\"«»“”")
        if re.fullmatch(r"[A-Za-z]{3,}", word) and word not in CODE_WORDS:
            words.append(word)
    return words


def printed_lines(cell):
    lines = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            lines += "".join(out["text"]).splitlines()
        elif out.get("output_type") == "execute_result" and "text/plain" in out.get("data", {}) \
                and "application/vnd.jupyter.widget-view+json" not in out["data"]:
            lines += "".join(out["data"]["text/plain"]).splitlines()
    return lines


def english_lines(lang, lesson):
    en = [c for c in nbformat.read(ROOT / "notebooks" / "en" / lesson, as_version=4).cells if c.cell_type == "code"]
    other = [c for c in nbformat.read(ROOT / "notebooks" / lang / lesson, as_version=4).cells if c.cell_type == "code"]
    found = []
    for en_cell, cell in zip(en, other):
        english = set(printed_lines(en_cell))
        for line in printed_lines(cell):
            if line in english and len(english_words(line)) >= 2 and not any(p.search(line) for p in PYTORCH_OUTPUT):
                found.append(line)
    return found


def test_the_detector_finds_english_and_spares_code():
    assert english_words("running statistics unchanged: True") == ["running", "statistics", "unchanged"]
    assert english_words("blocks.0.linear  max |dL/dW| = 1e-3  ReLU + Kaiming") == []
    assert english_words("точность на тесте 81.2%") == []


@pytest.mark.parametrize("lang", OTHERS)
@pytest.mark.parametrize("lesson", LESSONS)
def test_translated_lessons_print_no_english(lang, lesson):
    assert english_lines(lang, lesson) == []


def figure_texts(fig):
    fig.canvas.draw()
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]


def every_plot(lang):
    """Draw every coursekit figure on small inputs, in `lang`; return their texts."""
    ck.set_language(lang)
    torch.manual_seed(0)
    model = ck.mlp(depth=3, width=8, activation="tanh", in_features=6, out_features=3)
    X, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    history = ck.train(model, X, y, steps=12, lr=0.1, record_every=3, progress=False)
    verdict = ck.diagnose(model, X, y)
    with ck.Monitor(model) as mon:
        torch.nn.functional.cross_entropy(model(X), y).backward()
    texts = []
    with plt.rc_context():
        ck.use_course_style(lang)  # the fonts the lesson uses (Chinese: a CJK font)
        texts = _draw_all(history, verdict, mon)
    ck.set_language("en")
    return texts


def _draw_all(history, verdict, mon):
    texts = []
    for draw in [
        lambda: ck.plot_grad_norms(verdict.norms),
        lambda: ck.plot_losses({"a": history, "b": history}),
        lambda: ck.plot_histograms(mon.last),
        lambda: ck.plot_magnitudes({ck.tr("step_n", step=0): mon.last, ck.tr("after_training"): mon.last_grad}),
        lambda: ck.plot_layer_distributions(mon.last),
        lambda: ck.plot_saturation(next(iter(mon.last.values()))),
        lambda: ck.plot_update_ratios(history),
        lambda: ck.plot_grad_norm_over_steps({"a": history}, threshold=1.0),
        lambda: ck.plot_activation_history(history),
        lambda: ck.plot_time_step_grads({"RNN": torch.tensor([1e-3, 1e-2, 0.0, 1.0])}),
        lambda: widgets.draw_depth(plt.figure(), 4, "tanh", "normal", 1.0),
        lambda: widgets.draw_clipping(plt.figure(), "norm", 10.0),
        lambda: widgets.draw_batchnorm(plt.figure(), True, 0.1, "default"),
    ]:
        draw()
        for number in plt.get_fignums():
            texts += figure_texts(plt.figure(number))
        plt.close("all")
    return texts


@pytest.fixture(scope="module")
def english_figure_texts():
    texts = set(every_plot("en"))
    assert any(english_words(text) for text in texts)  # the check can see English
    return texts


@pytest.mark.parametrize("lang", OTHERS)
def test_figures_carry_no_english(lang, english_figure_texts):
    """A title, label or legend drawn as in the English figure, with English words in it, is untranslated."""
    untranslated = {text for text in every_plot(lang) if text in english_figure_texts and english_words(text)}
    assert untranslated == set()
