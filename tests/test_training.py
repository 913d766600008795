import math

import matplotlib
import pytest
import torch

import coursekit as ck

matplotlib.use("Agg")


def test_training_learns_and_records(fashion):
    X, y, Xt, yt = fashion
    model = ck.mlp(depth=2, width=32)
    h = ck.train(model, X, y, steps=150, lr=0.1, progress=False, record_every=10)
    assert len(h.loss) == 150 and not h.diverged and h.recorded_steps == list(range(0, 150, 10))
    assert sum(h.loss[-20:]) / 20 < 0.6 * h.loss[0]
    assert ck.evaluate(model, Xt, yt) > 0.6
    assert set(h.layer_grad_norms) == {"blocks.0.linear.weight", "blocks.1.linear.weight", "head.weight"}
    assert all(len(v) == 15 for v in h.update_ratio.values())
    assert len(h.act_stats["blocks.0.act"]) == 15 and len(h.grad_norm) == len(h.weight_norm) == 150
    assert all(not m._forward_hooks for m in model.modules())


def test_nan_stop_returns_history_so_far(fashion, capsys):
    X, y, _, _ = fashion
    torch.manual_seed(0)
    model = ck.mlp(depth=4, width=64, activation="relu", init="normal", std=1.0)
    h = ck.train(model, X, y, steps=100, lr=0.01, progress=False)  # lesson 01's failing run
    assert h.diverged and h.stop_step == len(h.loss) < 10
    assert "Stopped at step" in capsys.readouterr().out
    assert h.loss[-1] > 1000 * h.loss[0] and h.weight_norm[-1] > 1000 * h.weight_norm[0]


@pytest.mark.parametrize("clip", [("norm", 1.0), ("value", 0.01)])
def test_clipping_keeps_the_failing_run_finite(fashion, clip):
    X, y, _, _ = fashion
    torch.manual_seed(0)
    model = ck.mlp(depth=4, width=64, activation="relu", init="normal", std=1.0)
    h = ck.train(model, X, y, steps=60, lr=0.01, clip=clip, progress=False)
    assert not h.diverged and all(math.isfinite(v) for v in h.loss)


def test_penalty_and_after_step_hooks(fashion):
    X, y, _, _ = fashion
    model = ck.mlp(depth=1, width=16)
    calls = []
    h = ck.train(model, X, y, steps=5, penalty=lambda m: 0 * m.head.weight.sum() + 1.0,
                 after_step=lambda m: calls.append(1), progress=False, monitor=False)
    assert len(calls) == 5 and h.layer_grad_norms == {} and h.loss[0] > 1.0


@pytest.mark.parametrize("kwargs, name", [
    ({"steps": 0}, "steps"), ({"lr": 0}, "lr"), ({"lr": -1}, "lr"), ({"batch_size": 0}, "batch_size"),
    ({"optimizer": "rmsprop"}, "optimizer"), ({"clip": ("norm", -1)}, "clip"), ({"clip": 5}, "clip"),
    ({"weight_decay": -0.1}, "weight_decay"), ({"momentum": -1}, "momentum"), ({"record_every": 0}, "record_every"),
])
def test_train_bad_arguments(kwargs, name):
    X, y = torch.randn(8, 784), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match=name):
        ck.train(ck.mlp(depth=1, width=4), X, y, progress=False, **kwargs)


def test_train_bad_model_and_data():
    with pytest.raises(TypeError, match="model"):
        ck.train(None, torch.randn(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="same number"):
        ck.train(ck.mlp(depth=1, width=4), torch.randn(4, 784), torch.zeros(3, dtype=torch.long))


def test_adam_and_history_repr(fashion):
    X, y, _, _ = fashion
    h = ck.train(ck.mlp(depth=1, width=8), X, y, steps=3, optimizer="adam", lr=1e-3, progress=False)
    assert repr(h).startswith("History(3 steps")


def test_plots_draw(fashion):
    X, y, _, _ = fashion
    model = ck.mlp(depth=3, width=16, activation="tanh")
    h = ck.train(model, X, y, steps=10, progress=False)
    with ck.Monitor(model) as mon:
        model(X[:64])
    assert len(ck.plot_losses({"a": h, "b": h}).lines) == 2
    assert len(ck.plot_grad_norms(ck.diagnose(model, X[:64], y[:64]).norms).lines) == 1
    assert len(ck.plot_histograms(mon.last)) == 3
    assert ck.plot_saturation(mon.last["blocks.0.act"]).images
    assert ck.plot_update_ratios(h).lines
    assert ck.plot_grad_norm_over_steps({"a": h}, threshold=1.0).lines
    assert ck.plot_time_step_grads({"rnn": torch.rand(10)}).lines
    matplotlib.pyplot.close("all")


def test_the_first_shape_check_leaves_batchnorm_statistics_alone(fashion):
    X, y, _, _ = fashion
    model = ck.mlp(depth=2, width=8, norm="batch")
    ck.train(model, X[:64], y[:64], steps=1, batch_size=64, progress=False, monitor=False)
    assert model.blocks[0].norm.num_batches_tracked.item() == 1  # the one training step, nothing else
