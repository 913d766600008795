"""Build the course website (`make site`): build/site/<lang>/ for every language, and
build/site/index.html, which opens the English home page.

    python tools/website.py                   all five languages
    python tools/website.py --langs en ru     some of them (the language switcher still links all five)

Sphinx with MyST-NB renders the committed, executed notebooks as they are (nothing is executed, no
network is used): outputs, plots and math, one page per lesson, the instructor notes of
notebooks/<lang>/INSTRUCTORS.md, Sphinx's own search, and on every page links to the same page in
the other languages. The home page is the README's introduction (in English) or the language's
paragraph of it. The sources are assembled in build/site-src/, never in notebooks/.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jupyter_server_mathjax
import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decks import without_widgets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "site"
MATHJAX = Path(jupyter_server_mathjax.__file__).parent / "static"
LANGS = ("en", "ru", "zh", "pt", "fr")
PARAGRAPH = {"ru": "**Русский.**", "zh": "**中文.**", "pt": "**Português.**", "fr": "**Français.**"}
def readme_intro():
    """The README up to its first section after the lessons ("## Two commands")."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text[:text.index("\n## Two commands")]


def site_links(markdown):
    """notebooks/<lang>/NN_topic.ipynb -> ../<lang>/NN_topic.html (every language's build is flat)."""
    return re.sub(r"\(notebooks/([a-z]{2})/([^)]+)\.ipynb\)", r"(../\1/\2.html)", markdown)


TITLES = {"en": "Vanishing and exploding gradients", "ru": "Затухающие и взрывающиеся градиенты",
          "zh": "梯度消失与梯度爆炸", "pt": "Gradientes que desaparecem e explodem",
          "fr": "Gradients qui disparaissent et qui explosent"}


def home_page(lang, lessons):
    """The README's introduction (English), or the title, the language's paragraph of it and the
    lesson table; then the (hidden) table of contents of the language's lessons."""
    intro = readme_intro()
    start = intro.index("| # |")
    table = intro[start:intro.index("\n\n", start)]
    if lang == "en":
        body = intro
    else:
        paragraph = next(p for p in intro.split("\n\n") if p.startswith(PARAGRAPH[lang]))
        body = f"# {TITLES[lang]}\n\n{paragraph}\n\n{table}\n"
    toctree = "\n".join(Path(name).stem for name in lessons)
    return f"{site_links(body)}\n\n```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{toctree}\ninstructors\n```\n"


def prepare(lang, src):
    """build/site-src/<lang>/: the lessons (widget state removed), index.md, instructors.md."""
    for old in (src, src.parent / f"{src.name}-build"):
        if old.exists():
            shutil.rmtree(old)
    src.mkdir(parents=True)
    lessons = sorted(p.name for p in (ROOT / "notebooks" / lang).glob("*.ipynb"))
    for name in lessons:
        nbformat.write(without_widgets(nbformat.read(ROOT / "notebooks" / lang / name, as_version=4)), src / name)
    (src / "index.md").write_text(home_page(lang, lessons), encoding="utf-8")
    shutil.copy(ROOT / "notebooks" / lang / "INSTRUCTORS.md", src / "instructors.md")


def build(lang, out):
    src = ROOT / "build" / "site-src" / lang
    prepare(lang, src)
    env = dict(os.environ, SITE_LANG=lang, SITE_TITLE=TITLES[lang], SITE_CACHE=str(src.parent))
    html = src.parent / f"{lang}-build" / "html"  # MyST-NB also writes ../jupyter_execute: keep it out of the site
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(CONF), str(src), str(html)],
                   check=True, env=env)
    if (out / lang).exists():
        shutil.rmtree(out / lang)
    shutil.copytree(html, out / lang, ignore=shutil.ignore_patterns(".buildinfo", ".doctrees"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", nargs="+", default=list(LANGS), choices=LANGS)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.out / "_mathjax").exists():
        shutil.copytree(MATHJAX, args.out / "_mathjax", ignore=shutil.ignore_patterns("SVG"))  # HTML-CSS output only
    for lang in args.langs:
        start = time.perf_counter()
        build(lang, args.out)
        print(f"built {args.out / lang} in {time.perf_counter() - start:.0f} s", flush=True)
    (args.out / "index.html").write_text('<!DOCTYPE html>\n<meta charset="utf-8">\n<title>Course</title>\n'
                                         '<meta http-equiv="refresh" content="0; url=en/index.html">\n'
                                         '<a href="en/index.html">English</a>\n', encoding="utf-8")


if __name__ == "__main__":
    main()
