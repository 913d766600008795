"""The interactive explorers (coursekit/widgets.py): they build, a change of a control redraws the
picture, bad arguments are clear errors, and the cell shows one output that works without a
kernel too. Their speed is measured by benchmarks/widget_latency.py, not asserted here."""

from unittest import mock

import pytest
import torch

import coursekit as ck
from coursekit import widgets

PNG = b"\x89PNG\r\n\x1a\n"
EXPLORERS = {
    # explorer: (a control, a new value for it)
    widgets.depth_explorer: ("depth", 3),
    widgets.batchnorm_explorer: ("batchnorm", True),
    widgets.clipping_explorer: ("threshold", 100.0),
}


@pytest.mark.parametrize("make", EXPLORERS, ids=lambda f: f.__name__)
def test_builds_and_redraws(make):
    explorer = make()
    before = bytes(explorer.image.value)
    assert before.startswith(PNG)
    control, value = EXPLORERS[make]
    explorer.controls[control].value = value
    assert bytes(explorer.image.value).startswith(PNG) and bytes(explorer.image.value) != before
    assert explorer.settings()[control] == value


def test_every_control_redraws():
    explorer = widgets.depth_explorer()
    for control, value in [("activation", "relu"), ("init", "kaiming"), ("init", "normal"), ("std", 0.1)]:
        before = bytes(explorer.image.value)
        explorer.controls[control].value = value
        assert bytes(explorer.image.value) != before, control


def test_back_to_a_setting_shows_the_same_picture():
    explorer = widgets.clipping_explorer(mode="norm", threshold=1.0)
    first = bytes(explorer.image.value)
    explorer.controls["mode"].value = "value"
    assert bytes(explorer.image.value) != first
    explorer.controls["mode"].value = "norm"
    assert bytes(explorer.image.value) == first


def test_std_only_for_normal_init():
    explorer = widgets.depth_explorer(init="xavier")
    assert explorer.controls["std"].disabled
    explorer.controls["init"].value = "normal"
    assert not explorer.controls["std"].disabled


@pytest.mark.parametrize("call", [
    lambda: widgets.depth_explorer(depth=0),
    lambda: widgets.depth_explorer(depth=31),
    lambda: widgets.depth_explorer(depth=2.5),
    lambda: widgets.depth_explorer(activation="softmax"),
    lambda: widgets.depth_explorer(init="orthogonal"),
    lambda: widgets.depth_explorer(std=0),
    lambda: widgets.depth_explorer(std=100.0),
    lambda: widgets.batchnorm_explorer(batchnorm="yes"),
    lambda: widgets.batchnorm_explorer(lr=0.5),
    lambda: widgets.batchnorm_explorer(init="zeros"),
    lambda: widgets.clipping_explorer(mode="max"),
    lambda: widgets.clipping_explorer(threshold=-1.0),
    lambda: ck.explore_depth(depth="deep"),
    lambda: ck.explore_batchnorm(lr=None),
    lambda: ck.explore_clipping(threshold=3.0),
])
def test_bad_arguments(call):
    with pytest.raises(ValueError, match="must be"):
        call()


@pytest.mark.parametrize("explore", [ck.explore_depth, ck.explore_batchnorm, ck.explore_clipping],
                         ids=lambda f: f.__name__)
def test_one_output_with_static_fallbacks(explore):
    """The cell shows the widget; viewers without a kernel fall back to the PNG of the default
    setting; the text is the same on every run (nbval compares it; it skips the widget's id)."""
    with mock.patch.object(widgets, "display") as display:
        assert explore() is None
    (shown,), _ = display.call_args
    bundle = shown._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "image/png", "text/plain"}
    assert bundle["text/plain"] == ck.tr("explorer_static")
    assert bundle["image/png"].startswith("iVBORw0KGgo")  # base64 of a PNG


def test_leaves_the_notebook_state_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    widgets.depth_explorer(depth=4, activation="relu", init="kaiming")
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_the_clipping_story():
    """Unclipped, the run diverges within a few steps; clipped by norm, it stays finite."""
    assert widgets.clipping_run("none", None).diverged
    assert widgets.clipping_run("none", None).stop_step <= 5
    assert not widgets.clipping_run("norm", 1.0).diverged


def test_loss_scale_explorer_builds_and_redraws():
    X, y = ck.make_copy_task(64, seed=0)
    explorer = widgets.loss_scale_explorer(ck.transformer(depth=2, seed=0), X, y)
    before = bytes(explorer.image.value)
    assert before.startswith(PNG)
    for control, value in [("exponent", 10), ("dtype", "bfloat16")]:
        explorer.controls[control].value = value
        assert bytes(explorer.image.value) != before, control
        before = bytes(explorer.image.value)
    with pytest.raises(ValueError, match="exponent"):
        widgets.loss_scale_explorer(ck.transformer(depth=2, seed=0), X, y, exponent=3)
