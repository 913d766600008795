"""ck.doctor: each check fires on a model built to fail it, stays quiet on healthy models, and
leaves the model (and the random stream) exactly as it found it."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import coursekit as ck
from coursekit.mysteries import FastTanh


def relu_net(depth=4, width=64, seed=0):
    """Kaiming hidden layers, PyTorch's small default head: the healthy control."""
    torch.manual_seed(seed)
    model = ck.mlp(depth, width, "relu", init="kaiming")
    model.head.reset_parameters()
    return model


def levels(report):
    return {f.check: f.level for f in report.findings}


def failed(report):
    return [f.check for f in report.findings if f.level == "fail"]


def small_cnn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return model


def test_checklist_order(fashion):
    report = ck.doctor(relu_net(), *fashion[:2])
    assert [f.check for f in report.findings] == ["inputs", "loss", "init_loss", "forward", "gradient", "backward",
                                                  "steps", "overfit"]


@pytest.mark.parametrize("build", ["relu", "sigmoid_batchnorm", "cnn", "pre_ln_transformer"])
def test_healthy_models_come_back_clean(fashion, build):
    X, y = fashion[:2]
    options = {}
    if build == "relu":
        model = relu_net()
    elif build == "sigmoid_batchnorm":
        torch.manual_seed(0)
        model = ck.mlp(10, 64, "sigmoid", norm="batch")
    elif build == "cnn":
        model, X = small_cnn(), X.reshape(-1, 1, 28, 28)
        options = dict(lr=0.05)
    else:
        model = ck.transformer(depth=4, norm_first=True, seed=0)
        X, y = ck.make_copy_task(512, seed=0)
        options = dict(loss_fn=ck.token_cross_entropy, lr=1e-3, optimizer="adam", batch_size=32)
    report = ck.doctor(model, X, y, **options)
    assert not report.problems, str(report)
    assert "every check passed" in str(report)


def test_inputs_not_normalised(fashion):
    X, y = fashion[:2]
    report = ck.doctor(relu_net(), X * 50 + 100, y)
    assert report["inputs"].key == "inputs_scale" and failed(report)[0] == "inputs"


def test_summed_loss_is_told_from_a_mean(fashion):
    summed = lambda out, t: F.cross_entropy(out, t, reduction="sum")
    report = ck.doctor(relu_net(), *fashion[:2], loss_fn=summed)
    assert report["loss"].level == "fail" and "2.00 x" in report["loss"].text
    assert report["init_loss"].level == "ok"  # the loss per example is still about ln(10)
    assert ck.doctor(relu_net(), *fashion[:2])["loss"].level == "ok"


def test_confident_output_layer(fashion):
    model = relu_net()
    with torch.no_grad():
        model.head.weight.mul_(30)
    report = ck.doctor(model, *fashion[:2])
    assert failed(report)[0] == "init_loss" and report["forward"].ok and report["backward"].ok


def test_dead_layer_is_named(fashion):
    model = relu_net(depth=5)
    with torch.no_grad():
        model.blocks[2].linear.bias.fill_(-15.0)
    report = ck.doctor(model, *fashion[:2])
    assert failed(report)[0] == "forward" and report["forward"].key == "forward_dead"
    assert "blocks.2.act" in report["forward"].text
    assert report["gradient"].ok  # the exact zeros after the dead layer sit at ReLU kinks: skipped, not "wrong"
    assert report["backward"].key == "backward_vanishing"


def test_saturated_tanh(fashion):
    # N(0, 6^2 / fan_in): pre-activations of std about 6, |tanh| > 0.97 for most of them; the mean-field gain
    # 6 * sqrt(E[tanh'(z)^2]) is above 1, so the signal grows towards the input (lesson 01): "exploding"
    torch.manual_seed(0)
    model = ck.mlp(8, 64, "tanh")
    for block in model.blocks:
        nn.init.normal_(block.linear.weight, 0.0, 6 / math.sqrt(block.linear.in_features))
    report = ck.doctor(model, *fashion[:2])
    assert failed(report)[0] == "forward" and report["forward"].key == "forward_saturated"
    assert report["backward"].level != "ok"


def test_wrong_backward_is_caught_by_the_gradient_check(fashion):
    torch.manual_seed(0)
    model = ck.mlp(4, 64, "tanh", init="xavier")
    for block in model.blocks:
        block.act = FastTanh()
    report = ck.doctor(model, *fashion[:2])
    assert failed(report)[0] == "gradient"
    assert "blocks.3.linear" in report["gradient"].text  # the weight closest to the output below a wrong backward
    torch.manual_seed(0)
    right = ck.mlp(4, 64, "tanh", init="xavier")
    assert ck.doctor(right, *fashion[:2])["gradient"].ok


def test_vanishing_sigmoid_net(fashion):
    # sigmoid: sigma'(z) <= 1/4; PyTorch's default init has sigma_w^2 = 1/(3 n): gain about sqrt(1/3) / 4 = 0.14,
    # forward (the spread between examples) and backward (dL/dh) alike: 0.14^9 = 3e-8 over ten layers
    torch.manual_seed(0)
    report = ck.doctor(ck.mlp(10, 64, "sigmoid"), *fashion[:2])
    assert failed(report)[0] == "forward" and report["forward"].key == "forward_collapse"
    assert report["backward"].key == "backward_vanishing" and report["overfit"].level == "fail"
    spreads = list(report["forward"].detail.values())
    assert 0.1 < (spreads[-1] / spreads[0]) ** (1 / 9) < 0.2


class TripleBackwardSigmoid(torch.autograd.Function):
    """sigmoid with a backward three times too large: a bug where the gradient is already tiny."""

    @staticmethod
    def forward(ctx, x):
        out = torch.sigmoid(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return 3 * grad * out * (1 - out)


class TripleSigmoid(nn.Module):
    def forward(self, x):
        return TripleBackwardSigmoid.apply(x)


def test_gradient_check_sees_a_wrong_backward_where_the_gradient_vanishes(fashion):
    # below blocks.1 the gradient is about 1e-8: too small for eps = 1e-6, measured with eps = 1e-3
    torch.manual_seed(0)
    model = ck.mlp(10, 64, "sigmoid")
    model.blocks[1].act = TripleSigmoid()
    report = ck.doctor(model, *fashion[:2])
    assert report["gradient"].level == "fail" and "blocks.1.linear" in report["gradient"].text


def test_learning_rate_too_large_and_too_small(fashion):
    X, y = fashion[:2]
    assert ck.doctor(relu_net(), X, y, lr=20.0)["steps"].level == "fail"
    small = ck.doctor(relu_net(), X, y, lr=1e-4)["steps"]  # update:data about 1e-6 .. 1e-5: a warning
    assert small.level == "warn" and small.key == "steps_update_small"
    tiny = ck.doctor(relu_net(), X, y, lr=1e-6)["steps"]  # below 1e-6: a failure
    assert tiny.level == "fail" and tiny.key == "steps_update_tiny"


def test_tiny_inputs(fashion):
    X, y = fashion[:2]
    assert ck.doctor(relu_net(), X * 1e-3, y)["inputs"].key == "inputs_tiny"


def test_the_report_ends_with_what_it_cannot_see(fashion):
    text = str(ck.doctor(relu_net(), *fashion[:2]))
    assert text.endswith(ck.tr("doc_not_seen")) and ck.tr("doc_all_clear") in text


def test_the_model_is_left_as_it_was(fashion):
    X, y = fashion[:2]
    torch.manual_seed(0)
    model = ck.mlp(4, 32, "relu", norm="batch")
    F.cross_entropy(model(X[:64]), y[:64]).backward()  # gradients the student already has
    model.eval()
    state = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    ck.doctor(model, X, y)
    assert not model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # BatchNorm buffers included
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert torch.equal(rng, torch.get_rng_state())


def test_float64_model_with_float32_data(fashion):
    report = ck.doctor(relu_net().double(), *fashion[:2])
    assert not [f for f in report.findings if f.level == "fail"]


@pytest.mark.parametrize("kwargs, name", [(dict(lr=-1.0), "lr"), (dict(optimizer="rmsprop"), "optimizer"),
                                          (dict(batch_size=0), "batch_size"), (dict(steps=1.5), "steps")])
def test_bad_arguments_are_named(fashion, kwargs, name):
    with pytest.raises(ValueError, match=name):
        ck.doctor(relu_net(), *fashion[:2], **kwargs)


def test_not_a_model(fashion):
    with pytest.raises(TypeError, match="model"):
        ck.doctor("a model", *fashion[:2])


def test_report_in_the_students_language(fashion):
    ck.set_language("ru")
    report = str(ck.doctor(relu_net(), *fashion[:2]))
    assert ck.tr("doc_check_overfit") in report and ck.tr("doc_all_clear") in report
    assert "overfit one batch" not in report
