"""Sphinx configuration of the course website (`make site`, built by tools/website.py).

One build per language (SITE_LANG), each from a folder of copies of the committed, executed
notebooks; nothing is executed. Everything a page loads is local: the theme's own files, MathJax 2
from the jupyter-server-mathjax package (copied to the site's root by tools/website.py), and no
widget JavaScript (the explorers show the picture saved with them).
"""

import os

LANG = os.environ.get("SITE_LANG", "en")
LANGUAGES = [("en", "English"), ("ru", "Русский"), ("zh", "中文"), ("pt", "Português"), ("fr", "Français")]
project = os.environ.get("SITE_TITLE", "Vanishing and exploding gradients")
language = LANG
html_search_language = LANG
extensions = ["myst_nb"]
templates_path = [os.path.join(os.path.dirname(__file__), "_templates")]
exclude_patterns = ["_build"]

nb_execution_mode = "off"  # the notebooks are committed executed: show their outputs as they are
nb_ipywidgets_js = {}  # no widget manager from a CDN
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_all_links_external = True  # the home page links lessons of every language: plain links, not cross-references

# MathJax 2 from the jupyter-server-mathjax package, one copy for the five languages at the site's root
# (tools/website.py puts it there); the path is relative to <lang>/_static/, and every page sits in <lang>/.
mathjax_path = "../../_mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
# Sphinx marks math with the class "math" inside a "tex2jax_ignore" page: MathJax 2 must process that class
# (and the package ships the STIX-Web fonts, not MathJax's TeX fonts)
mathjax2_config = {"tex2jax": {"processClass": "math|tex2jax_process", "ignoreClass": "tex2jax_ignore|mathjax_ignore",
                               "inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]},
                   "HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web", "webFont": "STIX-Web",
                                "imageFont": None}}
if LANG == "zh":  # jieba segments the Chinese words of the search index; its cache goes to build/, not /tmp
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.dt.tmp_dir = os.environ.get("SITE_CACHE")
html_static_path = ["_static"]
html_js_files = ["chinese_stemmer.js"] if LANG == "zh" else []  # Chinese search needs jieba (installed) and this
html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {"show_toc_level": 2, "use_download_button": False, "use_fullscreen_button": False}
html_sidebars = {"**": ["navbar-logo.html", "languages.html", "sbt-sidebar-nav.html"]}
html_context = {"languages": LANGUAGES, "current_language": LANG}
html_show_sourcelink = False
html_copy_source = False
