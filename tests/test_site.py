"""`make site` builds the course website offline from the committed notebooks, in five languages:
every lesson has its page, nothing is loaded from the network, no link is broken, and in Chromium
the math and the plots render, the language switcher leads to the same lesson, and search finds."""

import functools
import http.server
import re
import sys
import threading
from urllib.parse import unquote, urlsplit

import pytest

from chromium import ROOT, SCREENSHOTS, offline_page

sys.path.insert(0, str(ROOT / "tools"))
import website  # noqa: E402

LANGS = ("en", "ru", "zh", "pt", "fr")
LESSONS = sorted(p.stem for p in (ROOT / "notebooks" / "en").glob("*.ipynb"))
ATTRIBUTE = re.compile(r'<(a|link|script|img)\b[^>]*?\s(href|src)="([^"]*)"')


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    website.main(["--out", str(out)])
    return out


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(type("Quiet", (http.server.SimpleHTTPRequestHandler,),
                                     {"log_message": lambda *args: None}), directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def pages(site):
    return sorted(site.glob("*/*.html"))


def test_every_lesson_and_the_notes_in_every_language(site):
    for lang in LANGS:
        for name in LESSONS + ["index", "instructors", "search"]:
            assert (site / lang / f"{name}.html").is_file(), (lang, name)


def test_no_broken_links_and_nothing_loaded_from_the_network(site):
    broken, online = [], []
    for page in pages(site):
        for tag, _, target in ATTRIBUTE.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http:", "https:", "//")):
                if tag != "a":  # a link to a paper is fine; a script, style sheet or image from the web is not
                    online.append((page.name, target))
                continue
            if target.startswith(("#", "mailto:", "data:", "javascript:")):
                continue
            path = unquote(urlsplit(target).path)
            if path and not (page.parent / path).resolve().exists():
                broken.append((str(page.relative_to(site)), target))
    assert not broken and not online, (broken[:10], online[:10])


def test_language_switch_math_plots_in_chromium(server):
    with offline_page(1400, 900) as page:
        page.goto(f"{server}/en/07_diagnosis.html")
        page.wait_for_function("document.querySelectorAll('.MathJax, .MathJax_Display').length > 5", timeout=30_000)
        assert page.evaluate("[...document.images].filter(i => i.src.includes('_images/') && i.naturalWidth > 100).length") >= 2
        page.screenshot(path=str(SCREENSHOTS.joinpath("site-en.png")))
        page.click("nav.course-languages a[lang=ru]")
        page.wait_for_load_state()
        assert page.url.endswith("/ru/07_diagnosis.html") and page.evaluate("document.documentElement.lang") == "ru"
        page.wait_for_function("document.querySelectorAll('.MathJax, .MathJax_Display').length > 5", timeout=30_000)
        assert page.evaluate("[...document.images].filter(i => i.src.includes('_images/') && i.naturalWidth > 100).length") >= 2
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "site-ru.png"))
        online = [url for url in page.requests if not url.startswith((server, "about:"))]
        assert not online and not page.errors and not page.failed, (online, page.errors, page.failed)


@pytest.mark.parametrize("lang, query", [("en", "BatchNorm"), ("zh", "梯度"), ("ru", "инициализация")])
def test_search_finds(server, lang, query):
    with offline_page() as page:
        page.goto(f"{server}/{lang}/search.html?q={query}")
        page.wait_for_function("document.querySelectorAll('#search-results li').length > 0", timeout=30_000)
        assert not page.errors and not page.failed, (page.errors, page.failed)
