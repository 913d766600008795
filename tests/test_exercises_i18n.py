import pytest
import torch

import coursekit as ck


def test_claim_prints_or_raises(capsys):
    ck.claim(True, "claim_ok", text="x")
    assert capsys.readouterr().out.startswith("✓")
    with pytest.raises(AssertionError, match="did not hold"):
        ck.claim(False, "claim_ok", text="x")


def test_check_function_pass_and_first_counterexample(capsys):
    make = lambda g: (torch.randn(5, generator=g),)
    assert ck.check_function(lambda x: x.clamp(min=0), torch.relu, make)
    assert "✓ passed" in capsys.readouterr().out
    assert not ck.check_function(lambda x: x.abs(), torch.relu, make)
    assert "differs from the reference" in capsys.readouterr().out


def test_check_function_reports_student_errors(capsys):
    def broken(x):
        raise NotImplementedError("write me")

    assert not ck.check_function(broken, torch.relu, lambda g: (torch.randn(3, generator=g),))
    assert "NotImplementedError" in capsys.readouterr().out


def test_language_choice():
    with pytest.raises(ValueError, match="lang"):
        ck.set_language("de")
    ck.set_language("fr")
    assert ck.get_language() == "fr"
    assert ck.tr("step")  # untranslated keys fall back to English


def test_translated_messages_have_known_keys_and_the_same_blanks():
    import string

    from coursekit.i18n import LANGUAGES, MESSAGES, messages

    blanks = lambda s: {f for _, f, _, _ in string.Formatter().parse(s) if f}
    for lang in LANGUAGES:
        table = messages(lang)
        assert set(table) <= set(MESSAGES["en"]), lang
        for key, text in table.items():
            assert blanks(text) == blanks(MESSAGES["en"][key]), (lang, key)


def test_setup_seeds_and_reports(capsys, monkeypatch):
    monkeypatch.delenv("COURSEKIT_SEED", raising=False)
    device = ck.setup(lang="en", seed=3)
    assert device.type in ("cpu", "cuda") and "seed=3" in capsys.readouterr().out
    monkeypatch.setenv("COURSEKIT_SEED", "7")
    ck.setup()
    assert "seed=7" in capsys.readouterr().out
    with pytest.raises(ValueError, match="seed"):
        ck.seed_everything(-1)


def test_chinese_plot_labels_have_a_font_that_draws_them(capsys):
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    ck.setup(lang="zh")
    import matplotlib.pyplot as plt

    family = plt.rcParams["font.family"]
    assert len(family) == 2 and family[1] in ck.plots.CJK_FONTS
    path = font_manager.findfont(font_manager.FontProperties(family=family[1]), fallback_to_default=False)
    assert all(FT2Font(path).get_char_index(ord(ch)) != 0 for ch in "梯度消失爆炸层")
    plt.rcParams["font.family"] = ["sans-serif"]


def test_no_chinese_font_falls_back_to_english_labels(monkeypatch, capsys):
    monkeypatch.setattr(ck.plots, "cjk_font", lambda: None)
    ck.setup(lang="zh")
    assert "plot labels are in English" in capsys.readouterr().out
    assert ck.tr("layer") == "layer"
    ck.set_language("en")


def test_device_choice(monkeypatch):
    monkeypatch.setenv("COURSEKIT_DEVICE", "cpu")
    assert ck.get_device().type == "cpu"
    monkeypatch.setenv("COURSEKIT_DEVICE", "tpu")
    with pytest.raises(ValueError, match="COURSEKIT_DEVICE"):
        ck.get_device()
