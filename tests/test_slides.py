"""Every lesson carries slideshow metadata and exports to a reveal.js deck, in every language."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import slides  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*/*.ipynb"))
LANGS = sorted({p.parent.name for p in NOTEBOOKS})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_cell_has_slide_metadata(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].metadata["slideshow"]["slide_type"] == "slide"
    assert all(c.metadata.get("slideshow", {}).get("slide_type") == slides.slide_type(c) for c in nb.cells)


@pytest.mark.parametrize("lang", LANGS)
def test_one_deck_per_language_exports(lang, tmp_path):
    path = sorted((ROOT / "notebooks" / lang).glob("*.ipynb"))[0]
    subprocess.run([str(Path(sys.executable).with_name("jupyter")), "nbconvert", "--to", "slides", "--log-level=ERROR",
                    "--output-dir", str(tmp_path), str(path)], check=True, timeout=120)
    html = (tmp_path / f"{path.stem}.slides.html").read_text(encoding="utf-8")
    assert "reveal" in html and html.count('<section') >= 10
