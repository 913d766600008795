"""Lesson 07's mysteries: training setups that do not learn, each for one realistic reason.

    m = ck.mystery(3, seed=42)      # your instructor may give you your own seed
    m.run()                         # the symptom: it does not learn
    m.doctor()                      # the checklist (ck.doctor) on its model, data and settings
    m.check(cause="...", fix=my_fix)  # name the cause (one of ck.CAUSES) and fix it

The cause is hidden in coursekit, not in the notebook, and which mystery has which cause, like the
sizes, the layer and the magnitude, depends on the seed: a neighbour's answers do not fit yours.
A fix is a function that changes a fresh Setup (its model, data, loss_fn, lr, ...); the check
trains the fixed setup and accepts it only if the test accuracy reaches LEARNS.
"""

import contextlib
import io
import math
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data import load_data
from .i18n import tr
from .models import mlp
from .checklist import doctor
from .training import evaluate, train
from .validate import check_choice, check_int

CAUSES = ("init_too_large", "output_too_large", "inputs_not_normalised", "dead_layer", "loss_summed",
          "wrong_backward", "lr_too_small", "vanishing_depth")
MYSTERIES = 6  # each seed draws six of the eight causes, in its own order
VANISHING_LR = 0.05
LEARNS = 0.70  # test accuracy a fixed setup must reach (a healthy net of this size: about 0.78-0.80)
LESSON = {"init_too_large": "03 §4", "output_too_large": "03 §3", "inputs_not_normalised": "04 §1",
          "dead_layer": "02 §7", "loss_summed": "03 §3", "wrong_backward": "04 §5", "lr_too_small": "03 §9",
          "vanishing_depth": "02 §1"}
_data = {}


def _fashion(raw):
    """The mysteries' data, loaded once: 5000 training and 1000 test images; raw=True: pixels 0..255."""
    if raw not in _data:
        X, y, X_test, y_test = load_data("fashion_mnist", n_train=5000, n_test=1000, normalize=not raw)
        _data[raw] = (X * 255, y, X_test * 255, y_test) if raw else (X, y, X_test, y_test)
    return _data[raw]


def _mean_loss(logits, y):  # every setup's loss is a coursekit function: its type tells nothing
    return F.cross_entropy(logits, y, reduction="mean")


def _batch_loss(logits, y):
    return F.cross_entropy(logits, y, reduction="sum")


@dataclass
class Setup:
    """Everything a training run is made of; a fix changes some of it."""

    model: nn.Module
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    loss_fn: object = _mean_loss
    lr: float = 0.1
    optimizer: str = "sgd"
    batch_size: int = 64
    steps: int = 300


class _FastTanh(torch.autograd.Function):
    """tanh with a hand-written backward that uses the input x where the output tanh(x) belongs."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.tanh(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - x ** 2)  # d tanh(x)/dx = 1 - tanh(x)^2, not 1 - x^2


class FastTanh(nn.Module):
    def forward(self, x):
        return _FastTanh.apply(x)


def _build(cause, rng, seed):
    """A fresh broken Setup for `cause`; rng draws this variant's sizes, layer and magnitude."""
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left alone
        torch.manual_seed(seed)
        return _build_seeded(cause, rng)


def _build_seeded(cause, rng):
    depth, width = rng.choice([3, 4, 5]), rng.choice([48, 64, 96])
    data = [t.clone() for t in _fashion(raw=cause == "inputs_not_normalised")]  # a fix may change them in place
    if cause == "init_too_large":
        depth, gain = rng.choice([8, 9, 10]), rng.uniform(5, 8)
        model = mlp(depth, width, "tanh")
        for block in model.blocks:  # N(0, gain^2 / fan_in): gain 1 is LeCun, 5/3 the usual tanh gain
            nn.init.normal_(block.linear.weight, 0.0, gain / math.sqrt(block.linear.in_features))
            nn.init.zeros_(block.linear.bias)
        return Setup(model, *data)
    if cause == "vanishing_depth":
        return Setup(mlp(rng.choice([6, 7]), width, "sigmoid"), *data, lr=VANISHING_LR)  # PyTorch's default init
    if cause == "wrong_backward":
        model = mlp(depth, width, "tanh", init="xavier")
        model.head.reset_parameters()
        for block in model.blocks:
            block.act = FastTanh()
        return Setup(model, *data)
    model = mlp(depth, width, "relu", init="kaiming")
    model.head.reset_parameters()  # PyTorch's default: small logits, a loss at init of about ln(10)
    if cause == "output_too_large":
        with torch.no_grad():
            model.head.weight.mul_(rng.uniform(15, 40))
    elif cause == "dead_layer":
        with torch.no_grad():
            model.blocks[rng.randrange(1, depth)].linear.bias.fill_(-rng.uniform(10, 20))
    elif cause == "loss_summed":
        return Setup(model, *data, loss_fn=_batch_loss, batch_size=rng.choice([128, 256, 512]))
    elif cause == "lr_too_small":
        return Setup(model, *data, lr=10 ** -rng.uniform(5.0, 5.5))
    return Setup(model, *data)


@dataclass
class Outcome:
    accuracy: float
    diverged: bool
    steps: int

    @property
    def learns(self):
        return not self.diverged and self.accuracy >= LEARNS


class Mystery:
    """One broken training setup (see the module's docstring)."""

    def __init__(self, k, seed=0):
        self.k = check_choice("k", check_int("k", k), list(range(1, MYSTERIES + 1)))
        self.seed = check_int("seed", seed, low=0)
        self._cause = random.Random(seed).sample(CAUSES, MYSTERIES)[k - 1]
        self.answer, self.attempts = None, 0  # the last (cause, fix) checked, and how many were

    def setup(self):
        """A fresh copy of the broken setup (the same every time)."""
        return _build(self._cause, random.Random(f"{self.seed}-{self.k}"), self.seed * 100 + self.k)

    def run(self, setup=None, show=True):
        """Train the setup (the broken one unless given) and report the test accuracy."""
        s = setup or self.setup()
        with contextlib.redirect_stdout(io.StringIO()):  # the outcome line below says it all
            history = train(s.model, s.X_train, s.y_train, steps=s.steps, lr=s.lr, optimizer=s.optimizer,
                            batch_size=s.batch_size, loss_fn=s.loss_fn, monitor=False, progress=False)
        accuracy = evaluate(s.model, s.X_test, s.y_test) if not history.diverged else math.nan
        outcome = Outcome(accuracy, history.diverged, len(history.loss))
        if show:
            print(tr("myst_outcome_diverged" if history.diverged else "myst_outcome", k=self.k, steps=outcome.steps,
                     accuracy=accuracy, learns=LEARNS, step=history.stop_step))
        return outcome

    def doctor(self):
        """ck.doctor on the broken setup's model, training data and settings."""
        s = self.setup()
        return doctor(s.model, s.X_train, s.y_train, loss_fn=s.loss_fn, lr=s.lr, optimizer=s.optimizer,
                      batch_size=s.batch_size)

    def check(self, cause=None, fix=None):
        """Name the cause (one of CAUSES) and give a fix: a function that changes a Setup in place.
        The fix is accepted only if the fixed setup's test accuracy reaches LEARNS."""
        if cause is None:
            print(tr("myst_not_answered", causes=", ".join(CAUSES)))
            return False
        check_choice("cause", cause, CAUSES)
        self.answer, self.attempts = (cause, fix), self.attempts + 1
        if cause != self._cause:
            print(tr("myst_wrong_cause", cause=tr("cause_" + cause), lesson=LESSON[self._cause], k=self.k))
            return False
        if fix is None:
            print(tr("myst_right_cause", cause=tr("cause_" + cause)))
            return False
        setup = self.setup()
        try:
            fix(setup)
        except Exception as error:  # the student's bug, shown, not raised
            print(tr("myst_fix_error", error=f"{type(error).__name__}: {error}"))
            return False
        outcome = self.run(setup, show=False)
        key = "myst_fixed" if outcome.learns else "myst_fix_diverged" if outcome.diverged else "myst_not_fixed"
        print(tr(key, cause=tr("cause_" + cause), accuracy=outcome.accuracy, learns=LEARNS, steps=outcome.steps))
        return outcome.learns

    def hint(self, level=1):
        """Hints in levels: 1 where to look, 2 what it means, 3 what kind of fix."""
        level = check_choice("level", check_int("level", level), [1, 2, 3])
        print(tr(f"hint{level}_{self._cause}", lesson=LESSON[self._cause]))

    def solution(self):
        """The cause and a fix that works (try the hints first)."""
        print(tr("myst_solution", k=self.k, cause=tr("cause_" + self._cause)))
        print(SOLUTIONS[self._cause])

    def __repr__(self):
        s = self.setup()
        return tr("myst_repr", k=self.k, seed=self.seed, model=type(s.model).__name__, steps=s.steps,
                  optimizer=s.optimizer, lr=s.lr, batch_size=s.batch_size, learns=LEARNS)


SOLUTIONS = {
    "init_too_large": "def fix(s):\n    ck.init_weights(s.model, \"xavier\")",
    "output_too_large": "def fix(s):\n    nn.init.zeros_(s.model.head.weight)",
    "inputs_not_normalised": ("def fix(s):\n    mean, std = s.X_train.mean(), s.X_train.std()\n"
                              "    s.X_train = (s.X_train - mean) / std\n    s.X_test = (s.X_test - mean) / std"),
    "dead_layer": ("def fix(s):\n    for layer in s.model.modules():\n        if isinstance(layer, nn.Linear):\n"
                   "            nn.init.zeros_(layer.bias)"),
    "loss_summed": "def fix(s):\n    s.loss_fn = F.cross_entropy   # reduction=\"mean\"",
    "wrong_backward": "def fix(s):\n    for block in s.model.blocks:\n        block.act = nn.Tanh()",
    "lr_too_small": "def fix(s):\n    s.lr = 0.1",
    "vanishing_depth": "def fix(s):\n    for block in s.model.blocks:\n        block.act = nn.ReLU()\n"
                       "    ck.init_weights(s.model, \"kaiming\")\n    s.model.head.reset_parameters()",
}


def mystery(k, seed=0):
    """Mystery number k (1 to 6) in the variant `seed`."""
    return Mystery(k, seed)
