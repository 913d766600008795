"""Debian's Chromium driven by Playwright for Python, for the tests that look at what a reader sees
(JupyterLab, the slide decks, the website). `playwright install` is NOT needed."""

import contextlib
import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "build" / "screenshots"


def require_browser():
    missing = [name for name, ok in [(str(CHROMIUM), CHROMIUM.exists()),
                                     ("the python package playwright", importlib.util.find_spec("playwright") is not None)]
               if not ok]
    if missing:
        message = f"the browser test needs {' and '.join(missing)} (apt-get install chromium; pip install playwright)"
        if "CI" in os.environ:
            pytest.fail(message)
        pytest.skip(message)


def _local(url):
    return url.startswith(("file:", "data:", "about:", "http://127.0.0.1:"))


@contextlib.contextmanager
def offline_page(width=1280, height=800):
    """A page in a browser context with no network: every request but file:, data: and a server on
    127.0.0.1 fails. `page.requests` lists every URL the page asked for, `page.errors` its script
    errors, `page.failed` the local files it could not load."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            context.route("**/*", lambda route: route.continue_() if _local(route.request.url) else route.abort())
            page = context.new_page()
            page.requests = []
            page.on("request", lambda request: page.requests.append(request.url))
            page.errors, page.failed = [], []  # script errors; local files that failed to load (404, missing)
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.on("requestfailed", lambda request: request.url.startswith(("file:", "http://127.0.0.1:"))
                    and request.failure != "net::ERR_ABORTED"
                    and page.failed.append(request.url))  # (aborted: the page was left before it arrived)
            page.on("response", lambda response: response.status >= 400 and page.failed.append(response.url))
            yield page
        finally:
            browser.close()
