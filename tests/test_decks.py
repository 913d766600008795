"""`make slides` decks present with no network: one deck per language, opened in Chromium with the
network switched off, renders its slides, its math and its plots, and advances."""

import sys

import pytest

from chromium import ROOT, SCREENSHOTS, offline_page

sys.path.insert(0, str(ROOT / "tools"))
import decks  # noqa: E402

LANGS = ("en", "ru", "zh", "pt", "fr")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("slides")
    return {lang: decks.export(ROOT / "notebooks" / lang / "02_vanishing_gradients.ipynb", out) for lang in LANGS}


def test_a_deck_asks_for_nothing_online(built):
    html = built["en"].read_text(encoding="utf-8")
    assert "cdnjs" not in html and "unpkg" not in html and "googleapis" not in html
    assert 'src="../_assets/reveal.js/dist/reveal.js"' in html


@pytest.mark.parametrize("lang", LANGS)
def test_deck_presents_offline(built, lang):
    with offline_page() as page:
        page.goto(built[lang].as_uri())
        page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
        assert page.evaluate("Reveal.getTotalSlides()") >= 10
        page.wait_for_function("window.MathJax && MathJax.Hub && document.querySelectorAll('.MathJax, .MathJax_Display').length > 0",
                               timeout=30_000)
        first = page.evaluate("Reveal.getIndices()")
        page.keyboard.press("ArrowRight")
        page.wait_for_function("Reveal.getIndices().h > 0 || Reveal.getIndices().v > 0", timeout=10_000)
        assert page.evaluate("Reveal.getIndices()") != first
        plots = page.evaluate("[...document.querySelectorAll('img')].filter(i => i.src.startsWith('data:image/png')"
                              " && i.naturalWidth > 100).length")
        assert plots >= 3
        page.evaluate("Reveal.slide(3)")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"deck-{lang}.png"))
        online = [url for url in page.requests if not url.startswith(("file:", "data:", "about:"))]
        assert not online and not page.errors and not page.failed, (online, page.errors, page.failed)
