"""Every lesson carries slideshow metadata (tests/test_decks.py presents the decks offline)."""

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
