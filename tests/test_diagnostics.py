import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import coursekit as ck


def test_monitor_records_and_removes_cleanly():
    model = ck.mlp(depth=3, width=16, activation="tanh")
    x = torch.randn(32, 784)
    before = model(x)
    with ck.Monitor(model) as mon:
        model(x)
    assert list(mon.stats) == ["blocks.0.act", "blocks.1.act", "blocks.2.act"]
    assert mon.last["blocks.0.act"].shape == (32, 16)
    s = mon.stats["blocks.0.act"][0]
    assert 0 <= s["saturated"] <= 1 and s["dead"] is None
    assert all(not m._forward_hooks for m in model.modules())
    assert torch.equal(model(x), before)
    assert "saturated" in mon.table()


def test_activation_stats_values():
    h = torch.tensor([[0.0, 0.99, -0.98], [0.0, 0.5, 0.999]])
    s = ck.activation_stats(h, "tanh")
    assert s["saturated"] == pytest.approx(3 / 6) and s["near_zero"] == pytest.approx(2 / 6)
    d = ck.activation_stats(torch.tensor([[0.0, 1.0], [0.0, 0.0]]), "relu")
    assert d["dead"] == 0.5  # unit 0 is zero for every example


def test_monitor_on_a_students_own_model():
    class Student(nn.Module):  # no activation modules, a conv and an LSTM
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.lstm = nn.LSTM(4, 8, batch_first=True)
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            h = F.relu(self.conv(x)).mean(dim=(2, 3))
            seq, _ = self.lstm(h.unsqueeze(1).repeat(1, 5, 1))
            return self.out(seq[:, -1])

    model = Student()
    with ck.Monitor(model) as mon:
        loss = F.cross_entropy(model(torch.randn(6, 1, 8, 8)), torch.randint(0, 3, (6,)))
    loss.backward()
    assert set(mon.stats) == {"conv", "lstm", "out"}
    assert mon.last["conv"].shape == (6 * 36, 4) and mon.last["lstm"].shape == (30, 8)
    norms = ck.weight_grad_norms(model)
    assert {"conv.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "out.weight"} <= set(norms)


def test_monitor_needs_layers_and_weights_need_grads():
    with pytest.raises(ValueError, match="no layers"):
        ck.Monitor(nn.Sequential())
    with pytest.raises(ValueError, match="no parameters with gradients"):
        ck.weight_grad_norms(nn.Linear(3, 2))
    with pytest.raises(TypeError, match="model"):
        ck.Monitor(42)


def test_update_ratio_is_log10_of_relative_change():
    model = nn.Linear(10, 10, bias=False)
    mon = ck.Monitor(model)
    mon.before_step()
    with torch.no_grad():
        model.weight.mul_(1.001)  # the update is 0.001 * W: ratio 1e-3
    mon.after_step()
    assert mon.update_ratio["weight"][0] == pytest.approx(-3, abs=0.01)


def test_verdict_rules():
    assert ck.verdict({"a": 1e-6, "b": 1e-1}).kind == "vanishing"
    assert ck.verdict({"a": 1e5, "b": 1e1}).kind == "exploding"
    assert ck.verdict({"a": 0.1, "b": math.nan}).kind == "exploding"
    assert ck.verdict({"a": 1e-6, "b": 2e-6}).kind == "vanishing"
    v = ck.verdict({"a": 0.2, "b": 0.1})
    assert v.kind == "healthy" and v.ratio == pytest.approx(2) and str(v).startswith("healthy")
    with pytest.raises(ValueError):
        ck.verdict({})


def test_diagnose_leaves_no_gradients(fashion):
    X, y, _, _ = fashion
    model = ck.mlp(depth=20, width=64, activation="tanh", init="normal", std=1.0)
    v = ck.diagnose(model, X[:256], y[:256])
    assert v.kind == "exploding" and v.ratio > 1e3  # lesson 01: layer 1's gradient >> layer 20's
    assert all(p.grad is None for p in model.parameters())


def test_diagnose_vanishing_sigmoid(fashion):
    X, y, _, _ = fashion
    torch.manual_seed(0)
    v = ck.diagnose(ck.mlp(depth=10, width=64, activation="sigmoid"), X[:256], y[:256])
    assert v.kind == "vanishing"


def test_diagnose_checks_data():
    model = ck.mlp(depth=1, width=4)
    with pytest.raises(ValueError, match="same number"):
        ck.diagnose(model, torch.randn(5, 784), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        ck.diagnose(model, torch.randn(0, 784), torch.zeros(0, dtype=torch.long))
    with pytest.raises(TypeError, match="X"):
        ck.diagnose(model, [[0.0] * 784], torch.zeros(1, dtype=torch.long))


def test_time_step_grads_grow_backwards_for_an_exploding_rnn():
    torch.manual_seed(0)
    x, y = ck.make_sequence_task(256, 100)
    g = ck.time_step_grad_norms(ck.rnn_classifier("rnn", nonlinearity="relu", recurrent_scale=1.8), x, y)
    assert g.shape == (100,) and g[0] > 100 * g[-1]
