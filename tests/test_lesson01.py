"""Lesson 01 (exploding gradients): the recurrent part, with the notebook's own configurations, checked
for two seeds. The deep-MLP part is guarded by the notebook's claims and by tests/test_diagnostics.py."""

import math

import pytest
import torch

import coursekit as ck

SEEDS = (0, 1)


def recurrent_model(cell, seed, gain=1.8):
    torch.manual_seed(seed)
    return ck.rnn_classifier(cell, hidden=32, nonlinearity="relu", recurrent_scale=gain)


def first_over_last(cell, seed, gain):
    x, y = ck.make_sequence_task(n=256, length=100, seed=seed)
    norms = ck.time_step_grad_norms(recurrent_model(cell, seed, gain), x, y)
    return (norms[0] / norms[-1]).item()


@pytest.mark.parametrize("seed", SEEDS)
def test_at_the_same_gain_only_the_plain_rnn_explodes(seed):
    assert first_over_last("rnn", seed, 1.8) > 1e6
    assert first_over_last("lstm", seed, 1.8) < 1 and first_over_last("gru", seed, 1.8) < 1


@pytest.mark.parametrize("seed", SEEDS)
def test_gated_cells_explode_too_at_a_larger_gain(seed):
    assert first_over_last("lstm", seed, 6.0) > 100 and first_over_last("gru", seed, 6.0) > 100


@pytest.mark.parametrize("seed", SEEDS)
def test_the_tanh_nets_gain_formula_predicts_backpropagation(seed):
    """g = sigma_w * sqrt(n * E[tanh'(z)^2]) from the activations vs the factor per layer measured."""
    X, y, _, _ = ck.load_data("fashion_mnist", n_train=256, n_test=10)
    torch.manual_seed(seed)
    model = ck.mlp(depth=20, width=64, activation="tanh", init="normal", std=1.0)
    verdict = ck.diagnose(model, X, y)
    with ck.Monitor(model) as mon:
        model(X)
    gain = [math.sqrt(64 * ((1 - h ** 2) ** 2).mean().item()) for h in list(mon.last.values())[:-1]]
    predicted = math.prod(gain) ** (1 / len(gain))
    assert 1.5 < predicted < 3 and abs(math.log(predicted / verdict.ratio ** (1 / len(gain)))) < math.log(1.25)


def test_the_time_step_plot_marks_its_floor():
    curves = {"a": torch.tensor([0.0, 1e-3, 1.0]), "b": torch.tensor([1e-2, 1e-1, 1.0])}
    ax = ck.plot_time_step_grads(curves)
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]  # steps x_1 ... x_T
    assert ax.get_legend_handles_labels()[1][-1] == ck.tr("below_floor")
    ax = ck.plot_time_step_grads({"b": curves["b"]})
    assert ck.tr("below_floor") not in ax.get_legend_handles_labels()[1]
