"""Give every lesson slideshow metadata, so it presents as slides (RISE in JupyterLab, or the
reveal.js decks that `make slides` exports). Run it on the English notebooks after editing them;
tools/i18n_sync.py carries the metadata to the other languages.

    python tools/slides.py notebooks/en/*.ipynb

Rules: a markdown cell that starts with a heading opens a new slide; other markdown opens a
sub-slide (below, in reveal.js); code stays on the slide of the text above it; a claim cell
(`# NBVAL_CHECK_OUTPUT`) appears as a fragment, on the next click.
"""

import sys

import nbformat

RISE = {"scroll": True, "theme": "simple", "transition": "none", "enable_chalkboard": False}


def slide_type(cell):
    if cell.cell_type == "markdown":
        return "slide" if cell.source.lstrip().startswith("#") else "subslide"
    return "fragment" if cell.source.startswith("# NBVAL_CHECK_OUTPUT") else "-"


def mark(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata["slideshow"] = {"slide_type": slide_type(cell)}
    nb.metadata["rise"] = RISE
    nbformat.write(nb, path)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        mark(arg)
        print("marked", arg)
