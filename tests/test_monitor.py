"""The Monitor on the models students build: the unit axis of each layer type, one row per call of a
shared module, activation modules and recurrent layers watched together, dead units behind F.relu,
the backward statistics, what is recorded when, and the tables and plots it prints."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import coursekit as ck
import zoo


def test_monitor_records_and_removes_cleanly():
    model = ck.mlp(depth=3, width=16, activation="tanh")
    x = torch.randn(32, 784)
    before = model(x)
    with ck.Monitor(model) as mon:
        model(x)
    assert list(mon.stats) == ["blocks.0.act", "blocks.1.act", "blocks.2.act"]
    assert mon.last["blocks.0.act"].shape == (32, 16)
    s = mon.stats["blocks.0.act"][0]
    assert 0 <= s["saturated"] <= 1 and s["dead"] is None and sum(s["hist"]) == 32 * 16
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert torch.equal(model(x), before)
    assert "saturated" in mon.table()


def test_activation_stats_values():
    h = torch.tensor([[0.0, 0.99, -0.98], [0.0, 0.5, 0.999]])
    s = ck.activation_stats(h, "tanh")
    assert s["saturated"] == pytest.approx(3 / 6) and s["near_zero"] == pytest.approx(2 / 6)
    d = ck.activation_stats(torch.tensor([[0.0, 1.0], [0.0, 0.0]]), "relu")
    assert d["dead"] == 0.5  # unit 0 is zero for every example
    pre = ck.activation_stats(torch.tensor([[-1.0, 2.0], [-0.5, -1.0]]), "pre")
    assert pre["dead"] == 0.5  # unit 0 is <= 0 for every example: dead behind a ReLU


def test_units_of_a_sequence_are_its_features_not_its_time_steps():
    # Linear -> ReLU on (batch, time, features), with features 0-7 of 16 dead: every Transformer MLP
    linear = nn.Linear(8, 16)
    with torch.no_grad():
        linear.weight[:8] = 0.0
        linear.bias[:8] = -1.0
    model = nn.Sequential(linear, nn.ReLU())
    with ck.Monitor(model) as mon:
        model(torch.randn(4, 5, 8))
    assert mon.last["1"].shape == (20, 16)
    assert mon.stats["1"][-1]["dead"] == pytest.approx(0.5)


def test_units_of_a_convolution_are_its_channels():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    with ck.Monitor(model) as mon:
        model(torch.randn(6, 1, 8, 8))
    assert mon.last["1"].shape == (6 * 36, 4)


def test_a_shared_module_called_four_times_gets_four_rows():
    model = zoo.Shared(width=8, activation=nn.ReLU)
    with ck.Monitor(model) as mon:
        model(torch.randn(16, 784))
    assert list(mon.stats) == ["act", "act#2", "act#3", "act#4", "act#5"]


def test_functional_activations_get_dead_units_from_the_pre_activations():
    model = zoo.CNN(depth=3, channels=4)
    with torch.no_grad():
        model.convs[1].bias.fill_(-100.0)  # every unit of the second conv is negative: dead behind F.relu
    with ck.Monitor(model) as mon:
        model(torch.rand(8, 784))
    assert set(mon.stats) == {"convs.0", "convs.1", "convs.2", "head"}
    assert mon.stats["convs.1"][-1]["dead"] == 1.0 and mon.stats["convs.0"][-1]["dead"] < 1.0
    table = mon.table()
    assert "100.0%*" in table and table.splitlines()[-1] == ck.tr("pre_activation_note")


def test_a_recurrent_layer_is_watched_beside_the_activation_modules():
    class LSTMWithReLUHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(1, 8, batch_first=True)
            self.hidden = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
            self.out = nn.Linear(8, 2)

        def forward(self, x):
            seq, _ = self.lstm(x)
            return self.out(self.hidden(seq[:, -1]))

    with ck.Monitor(LSTMWithReLUHead()) as mon:
        mon.model(torch.randn(6, 5, 1))
    assert set(mon.stats) == {"lstm", "hidden.1"} and mon.last["lstm"].shape == (30, 8)


def test_packed_sequences_pass_through_the_hooks():
    model = zoo.Recurrent("gru", packed=True)
    x, y = ck.make_sequence_task(n=8, length=6, seed=0)
    with ck.Monitor(model) as mon:
        F.cross_entropy(model(x), y).backward()
    assert mon.last["rnn"].shape == (4 * 6 + 4 * 3, 16)  # the packed rows: 4 sequences of 6, 4 of 3
    assert "head" in mon.grad_stats and "rnn" not in mon.grad_stats  # the packed output itself is not used


def test_backward_statistics_per_layer():
    model = ck.mlp(depth=3, width=16, activation="tanh", init="xavier")
    with ck.Monitor(model) as mon:
        F.cross_entropy(model(torch.randn(32, 784)), torch.randint(0, 10, (32,))).backward()
    assert list(mon.grad_stats) == ["blocks.2.act", "blocks.1.act", "blocks.0.act"]  # in the order backward reaches them
    assert mon.last_grad["blocks.0.act"].shape == (32, 16) and mon.grad_stats["blocks.0.act"][0]["std"] > 0
    assert "dL/dh" in mon.table()


def test_what_is_recorded_and_how_much_is_kept():
    model = ck.mlp(depth=2, width=8, activation="relu")
    x = torch.randn(4, 784)
    with ck.Monitor(model, record_every=3, max_records=2) as mon:
        for _ in range(9):
            model(x)  # training forwards 0, 3, 6 are recorded; only the last two are kept
        model.eval()
        model(x)  # an eval forward is not recorded
    assert len(mon.stats["blocks.0.act"]) == 2
    with ck.Monitor(model, record_eval=True) as mon:
        model(x)
    assert len(mon.stats["blocks.0.act"]) == 1


def _monitored_training(batch_sizes):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = ck.mlp(depth=4, width=16, activation="tanh", init="xavier")
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with ck.Monitor(model) as mon:
            for step, b in enumerate(batch_sizes):
                F.cross_entropy(model(torch.randn(b, 784)), torch.randint(0, 10, (b,))).backward()
                opt.step()
                opt.zero_grad()
                if step == 2:
                    assert len(mon.stats["blocks.3.act"]) == 3  # read while training: everything so far
        return mon.stats, mon.grad_stats
    finally:
        torch.set_num_threads(before)


def test_the_worker_thread_computes_what_the_training_thread_would(monkeypatch):
    """With a core left free (torch on fewer threads than cores) the statistics are computed on a worker
    thread, several steps at once; with none, on the spot. Batches of several sizes (an epoch's last one is
    smaller) are kept apart. Both give the same records, in the order of the steps."""
    import coursekit.monitor as monitor
    sizes = [32, 32, 32, 7, 32, 32, 7]
    monkeypatch.setattr(monitor.os, "cpu_count", lambda: 64)
    on_worker = _monitored_training(sizes)
    monkeypatch.setattr(monitor.os, "cpu_count", lambda: 1)
    on_the_spot = _monitored_training(sizes)
    assert on_worker == on_the_spot
    assert [sum(r["hist"]) for r in on_worker[0]["blocks.0.act"]] == [min(1024, b * 16) for b in sizes]


def test_choosing_the_modules():
    model = ck.mlp(depth=2, width=8, activation="relu")
    with ck.Monitor(model, modules=["blocks.1.linear", "head"]) as mon:
        model(torch.randn(4, 784))
    assert list(mon.stats) == ["blocks.1.linear", "head"]
    with ck.Monitor(model, modules=(nn.Linear,)) as mon:
        model(torch.randn(4, 784))
    assert list(mon.stats) == ["blocks.0.linear", "blocks.1.linear", "head"]
    with pytest.raises(ValueError, match="modules"):
        ck.Monitor(model, modules=["no.such.layer"])


def test_monitor_needs_layers_and_weights_need_grads():
    with pytest.raises(ValueError, match="no layers"):
        ck.Monitor(nn.Sequential())
    with pytest.raises(ValueError, match="no parameters with gradients"):
        ck.weight_grad_norms(nn.Linear(3, 2))
    with pytest.raises(TypeError, match="model"):
        ck.Monitor(42)
    with pytest.raises(ValueError, match="record_every"):
        ck.Monitor(nn.Linear(3, 2), record_every=0)


def test_update_ratio_is_log10_of_relative_change():
    model = nn.Linear(10, 10, bias=False)
    mon = ck.Monitor(model)
    mon.before_step()
    with torch.no_grad():
        model.weight.mul_(1.001)  # the update is 0.001 * W: ratio 1e-3
    mon.after_step()
    assert mon.update_ratio["Linear.weight" if "Linear.weight" in mon.update_ratio else "weight"][0] == pytest.approx(-3, abs=0.01)


@pytest.mark.parametrize("lang", ["en", "ru", "zh", "pt", "fr"])
def test_table_columns_line_up_by_display_width(lang):
    ck.set_language(lang)
    model = ck.mlp(depth=2, width=8, activation="tanh")
    with ck.Monitor(model) as mon:
        F.cross_entropy(model(torch.randn(4, 784)), torch.randint(0, 10, (4,))).backward()
    from coursekit.i18n import display_width
    rows = mon.table().splitlines()
    assert len({display_width(r) for r in rows}) == 1, rows  # every row ends in the same column
    header = rows[0]
    assert all(f"  {ck.tr(key)}" in header for key in ("mean", "saturated", "dead", "near_zero"))  # never run together


def test_activation_histograms_over_training(fashion):
    X, y = fashion[0], fashion[1]
    history = ck.train(ck.mlp(depth=3, width=16, activation="tanh"), X, y, steps=30, record_every=10, progress=False)
    assert len(history.act_stats["blocks.0.act"]) == 3 and history.grad_stats["blocks.0.act"]
    axes = ck.plot_activation_history(history)
    assert len(axes) == 3 and axes[0].get_title() == "blocks.0.act"


def test_a_layer_that_produces_nan_or_inf_is_recorded_not_a_crash():
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 3), nn.ReLU())
    x = torch.randn(5, 4)
    x[0, 0] = float("nan")
    x[1, 1] = float("inf")
    with ck.Monitor(model) as mon:
        model(x)
        model(torch.randn(5, 4))
    assert len(mon.stats["1"]) == 2 and sum(mon.stats["3"][0]["hist"]) == 15
