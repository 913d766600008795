"""Export every lesson as a reveal.js deck that presents with no network (`make slides`).

    python tools/decks.py                      -> build/slides/<lang>/NN_topic.slides.html
    python tools/decks.py --langs en --out DIR

The slide structure is the notebooks' own (tools/slides.py sets it). What a deck loads comes from
installed packages, copied next to the decks into build/slides/_assets/: reveal.js 5 from
sphinx-revealjs and MathJax 2.7 from jupyter-server-mathjax. The template (tools/templates/
reveal_offline) is nbconvert's reveal.js template without its CDN scripts (jQuery, require.js,
mermaid, the widget manager); an explorer's cell shows the picture saved with it instead of the
live widget, and the theme is reveal.js's "white", whose fonts ship with reveal.js (RISE's
"simple" loads Google fonts).
"""

import argparse
import copy
import shutil
from pathlib import Path

import jupyter_server_mathjax
import nbformat
import sphinx_revealjs
from nbconvert import SlidesExporter

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"  # reveal_offline/
REVEAL = Path(sphinx_revealjs.__file__).parent / "_static" / "revealjs"
MATHJAX = Path(jupyter_server_mathjax.__file__).parent / "static"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def copy_assets(out):
    """reveal.js (its dist/ and the notes plugin) and MathJax into out/_assets; returns that folder."""
    assets = out / "_assets"
    for source, target in [(REVEAL / "dist", assets / "reveal.js" / "dist"),
                           (REVEAL / "plugin" / "notes", assets / "reveal.js" / "plugin" / "notes"),
                           (MATHJAX, assets / "mathjax")]:
        if not target.exists():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.map", "*.scss"))
    return assets


def without_widgets(nb):
    """The notebook with its widget state and live widget views removed: each explorer cell keeps
    the picture of its default setting that it saves as its other output."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if o.get("data", {}).keys() != {WIDGET_VIEW}]
    return nb


def exporter():
    return SlidesExporter(extra_template_basedirs=[str(TEMPLATES)], template_name="reveal_offline", reveal_url_prefix="../_assets/reveal.js", reveal_theme="white",
                          reveal_transition="none", reveal_scroll=True,
                          mathjax_url="../_assets/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe")


def export(path, out):
    """One lesson's deck: out/<lang>/<name>.slides.html (assets in out/_assets); returns its path."""
    copy_assets(out)
    html, _ = exporter().from_notebook_node(without_widgets(nbformat.read(path, as_version=4)))
    target = out / path.parent.name / f"{path.stem}.slides.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", nargs="+", default=None, help="languages (default: every folder in notebooks/)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "slides")
    args = parser.parse_args(argv)
    langs = args.langs or sorted(p.name for p in (ROOT / "notebooks").iterdir() if p.is_dir())
    for lang in langs:
        for path in sorted((ROOT / "notebooks" / lang).glob("*.ipynb")):
            print("wrote", export(path, args.out).relative_to(args.out.parent))


if __name__ == "__main__":
    main()
