"""Lesson 07's mysteries: each one fails as given, is solved by following ck.doctor's first failed
check, and is accepted only with the right cause and a fix that learns; none is visible in the
notebook's source."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import coursekit as ck

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SEEDS = (0, 1, 2)

# What a student concludes from the first line marked ✗ (lesson 07, section 1: fix the first problem first).
CAUSE_OF_FIRST_PROBLEM = {"inputs_scale": "inputs_not_normalised", "loss_summed": "loss_summed",
                          "init_loss_high": "output_too_large", "forward_dead": "dead_layer",
                          "forward_saturated": "init_too_large", "gradient_wrong": "wrong_backward",
                          "forward_collapse": "vanishing_depth", "steps_update_tiny": "lr_too_small"}


# The fix a student writes for each cause, from the lessons' tools.
def fix_init(s):
    ck.init_weights(s.model, "xavier")


def fix_output(s):
    nn.init.zeros_(s.model.head.weight)


def fix_inputs(s):
    mean, std = s.X_train.mean(), s.X_train.std()
    s.X_train, s.X_test = (s.X_train - mean) / std, (s.X_test - mean) / std


def fix_dead(s):
    for layer in s.model.modules():
        if isinstance(layer, nn.Linear):
            nn.init.zeros_(layer.bias)


def fix_loss(s):
    s.loss_fn = F.cross_entropy


def fix_backward(s):
    for block in s.model.blocks:
        block.act = nn.Tanh()


def fix_lr(s):
    s.lr = 0.1


def fix_vanishing(s):
    for block in s.model.blocks:
        block.act = nn.ReLU()
    ck.init_weights(s.model, "kaiming")
    s.model.head.reset_parameters()


FIXES = {"init_too_large": fix_init, "output_too_large": fix_output, "inputs_not_normalised": fix_inputs,
         "dead_layer": fix_dead, "loss_summed": fix_loss, "wrong_backward": fix_backward, "lr_too_small": fix_lr,
         "vanishing_depth": fix_vanishing}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", range(1, ck.mysteries.MYSTERIES + 1))
def test_each_mystery_is_solved_by_following_the_checklist(k, seed, capsys):
    m = ck.mystery(k, seed=seed)
    assert not m.run(show=False).learns
    report = m.doctor()
    first = report.problems[0]
    assert first.level == "fail"
    cause = CAUSE_OF_FIRST_PROBLEM[first.key]
    assert m.check(cause=cause, fix=FIXES[cause])
    assert "✓" in capsys.readouterr().out


def test_the_six_mysteries_have_six_causes():
    for seed in SEEDS:
        causes = {ck.mystery(k, seed=seed)._cause for k in range(1, 7)}
        assert len(causes) == 6 and causes <= set(ck.CAUSES)


def test_every_cause_is_drawn_and_each_seed_leaves_two_out():
    drawn = [{ck.mystery(k, seed=seed)._cause for k in range(1, 7)} for seed in range(20)]
    assert set().union(*drawn) == set(ck.CAUSES)  # the two causes a seed leaves out are real causes elsewhere


def test_a_fix_changes_only_its_own_copy_of_the_data():
    m = next(ck.mystery(k, seed=0) for k in range(1, 7))
    s = m.setup()
    s.X_train.mul_(0)
    assert m.setup().X_train.std() > 0.5


def test_variants_differ_between_seeds():
    orders = {tuple(ck.mystery(k, seed=seed)._cause for k in range(1, 7)) for seed in range(6)}
    assert len(orders) > 1  # which mystery has which cause depends on the seed
    shapes = set()
    for seed in range(10):
        for k in range(1, 7):
            m = ck.mystery(k, seed=seed)
            if m._cause == "dead_layer":
                shapes.add(tuple(p.shape for p in m.setup().model.parameters()))
    assert len(shapes) > 1  # and so do the sizes


def test_setup_is_fresh_and_repeatable():
    m = ck.mystery(1, seed=0)
    a, b = m.setup(), m.setup()
    assert a.model is not b.model
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))


def test_wrong_cause_gets_a_hint_not_the_answer(capsys):
    m = ck.mystery(2, seed=0)
    wrong = next(c for c in ck.CAUSES if c != m._cause)
    assert not m.check(cause=wrong, fix=FIXES.get(wrong))
    out = capsys.readouterr().out
    assert "✗" in out and ck.mysteries.LESSON[m._cause] in out
    assert ck.tr("cause_" + m._cause) not in out and m._cause not in out


def test_right_cause_with_a_fix_that_does_not_work(capsys):
    m = ck.mystery(3, seed=0)
    assert not m.check(cause=m._cause, fix=lambda s: None)
    assert "✗" in capsys.readouterr().out
    assert not m.check(cause=m._cause)  # no fix yet
    assert not m.check()  # not answered yet


def test_a_fix_that_raises_is_shown(capsys):
    m = ck.mystery(1, seed=0)

    def broken_fix(s):
        raise KeyError("oops")

    assert not m.check(cause=m._cause, fix=broken_fix)
    assert "KeyError" in capsys.readouterr().out


@pytest.mark.parametrize("call, name", [(lambda: ck.mystery(0), "k"), (lambda: ck.mystery(7), "k"),
                                        (lambda: ck.mystery(1, seed=-1), "seed"),
                                        (lambda: ck.mystery(1).check(cause="bad luck"), "cause"),
                                        (lambda: ck.mystery(1).hint(4), "level")])
def test_bad_input_is_named(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_hints_and_solution_in_the_students_language(capsys):
    ck.set_language("fr")
    m = ck.mystery(4, seed=0)
    for level in (1, 2, 3):
        m.hint(level)
    m.solution()
    out = capsys.readouterr().out
    assert ck.tr("cause_" + m._cause) in out and "Hint" not in out


def _lesson07():
    return sorted(NOTEBOOKS.glob("*/07_*.ipynb"))


def test_no_cause_is_visible_in_the_notebooks_source():
    assert len(_lesson07()) == 5
    for path in _lesson07():
        lang = path.parent.name
        ck.set_language(lang)
        labels = [ck.tr("cause_" + c) for c in ck.CAUSES]
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code":
                assert not [c for c in ck.CAUSES if c in source], (path, source)
            assert not [label for label in labels if label in source], (path, source)


def test_grading_executes_the_notebook_and_counts_what_is_solved(tmp_path):
    """A submission that answers mysteries 1-5 (right cause, working fix) and leaves 6 open: graded 5 of 6."""
    import nbformat
    import sys
    sys.path.insert(0, str(NOTEBOOKS.parent / "tools"))
    import grade_mysteries

    nb = nbformat.read(NOTEBOOKS / "en" / "07_diagnosis.ipynb", as_version=4)
    keep = []
    for cell in nb.cells:
        source = cell.source
        if cell.cell_type != "code" or not (source.startswith("import") or "ck.mystery(" in source or ".check(" in source):
            continue
        k = next((k for k in range(1, 7) if f"m{k}.check(" in source), None)
        if k is not None and k < 6:
            cause = ck.mystery(k, seed=0)._cause
            cell.source = "from torch import nn\n" + ck.mysteries.SOLUTIONS[cause].replace("def fix(", f"def fix{k}(") + \
                f"\n\nm{k}.check(cause={cause!r}, fix=fix{k});"
        elif k == 6:  # a flag set by hand does not count
            cell.source = "m6.solved = True"
        keep.append(cell)
    nb.cells = keep
    path = tmp_path / "student.ipynb"
    nbformat.write(nb, path)
    result = grade_mysteries.grade(path, timeout=300)
    assert result["seed"] == 0
    assert [k for k, m in result["mysteries"].items() if m["solved"]] == ["1", "2", "3", "4", "5"]
    assert result["mysteries"]["1"]["attempts"] == 1 and result["mysteries"]["6"]["attempts"] == 0
