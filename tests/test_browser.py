"""A real browser: JupyterLab runs a notebook with the explorers in Debian's Chromium (driven by
Playwright for Python), and we check what a student would see: no errors, every widget drawn,
and moving a slider changes the picture. A screenshot goes to build/screenshots/<name>.png.

Needs /usr/bin/chromium (apt-get install chromium) and the python package playwright (in the
dev extras; `playwright install` is NOT needed: we use Debian's browser). Without them the test
is skipped, except in CI (the variable CI is set), where it fails.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from chromium import CHROMIUM, CHROMIUM_ARGS, ROOT, SCREENSHOTS, require_browser

JUPYTER = Path(sys.executable).with_name("jupyter")
START_TIMEOUT_S = 90  # JupyterLab answers /api/status
RUN_TIMEOUT_S = 180  # Run All Cells finishes
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

EXPLORERS_NOTEBOOK = [
    'import coursekit as ck\n\ndevice = ck.setup(lang="en", seed=0)',
    "ck.explore_depth()",
    "ck.explore_batchnorm()",
    "ck.explore_clipping()",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, n=40):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:]) if Path(path).exists() else ""


def children(pid):
    """The ids of the processes whose parent is `pid` (the kernels JupyterLab started)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


class Lab:
    """JupyterLab on a free port with a random token, its settings in `home` (nothing read from or
    written to the user's ~/.jupyter), serving the repository."""

    def __init__(self, home):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "jupyterlab.log"
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), JUPYTER_RUNTIME_DIR=str(home / "runtime"))
        # No "get notified about official Jupyter news?" pop-up (it would cover the plots), no news or
        # update fetched: JupyterLab 4's setting does it (LabApp.news_url=None does not stop the pop-up).
        settings = home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                                "checkForUpdates": False}))
        command = [str(JUPYTER), "lab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
                   f"--IdentityProvider.token={self.token}", "--allow-root", f"--ServerApp.root_dir={ROOT}",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.kernels = []

    def api(self, path, method="GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}?token={self.token}", method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read() or "null")

    def wait_until_up(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {self.process.returncode}:\n{tail(self.log)}")
            try:
                self.api("status")
                return
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"JupyterLab did not answer on {self.url} within {START_TIMEOUT_S} s:\n{tail(self.log)}")

    def stop(self):
        """Shut down the server and its kernels (by the API, then by signal, by process id)."""
        self.kernels += children(self.process.pid)
        if self.process.poll() is None:
            try:
                self.api("shutdown", method="POST")
            except OSError:
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        for pid in self.kernels:  # a kernel the server failed to stop
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def write_notebook(path, sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def saved_outputs(path, timeout_s=30):
    """The outputs of the saved notebook. The server may still be writing it when its mtime changes (seen once
    under load: an empty file): read it again until it parses."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            nb = nbformat.read(path, as_version=4)
            break
        except nbformat.reader.NotJSONError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def run_all_cells(page):
    """Run > Run All Cells. The menu's items are greyed out until the notebook has the focus: click
    a cell first, and open the menu again if it was too early."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(5):
        page.click(".jp-Notebook .jp-InputPrompt")
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        try:
            page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel:text-is('Run All Cells')").click(timeout=5000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    pytest.fail("Run > Run All Cells stayed greyed out")


def run_all_and_check(page, lab, notebook, name):
    """Open `notebook` (a path under the repository), Run All Cells, check, move a slider, screenshot."""
    relative = notebook.relative_to(ROOT).as_posix()
    page.goto(f"{lab.url}/lab/tree/{relative}?token={lab.token}&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    page.wait_for_selector(".jp-StatusBar-Widget :text-matches('\\| Idle')")  # the kernel is connected and idle

    run_all_cells(page)
    page.wait_for_function("""() => {
        const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
        return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
    }""", timeout=RUN_TIMEOUT_S * 1000)

    # what the kernel produced: save, then read the file (an error output is an output of type 'error')
    before = notebook.stat().st_mtime_ns
    page.click(".jp-Notebook .jp-Cell")
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while notebook.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.2)
    outputs = saved_outputs(notebook)
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    n_widgets = sum(WIDGET_MIME in o.get("data", {}) for o in outputs)
    assert n_widgets > 0, "the notebook shows no widget"

    # every widget drawn: one widget view per widget output, and no widget error or placeholder
    page.wait_for_function(f"""() => document.querySelectorAll(
        '.jp-OutputArea-output > .jupyter-widgets').length >= {n_widgets}""")
    assert page.locator(".jp-OutputArea-output > .jupyter-widgets").count() == n_widgets
    text = page.locator(".jp-Notebook").inner_text()
    assert "Error displaying widget" not in text and "Loading widget" not in text

    # move the first explorer's first slider with the mouse: its picture changes
    image = page.locator("img.widget-image").first
    image.scroll_into_view_if_needed()
    old_src = image.get_attribute("src")
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] - 30, box["y"] + box["height"] / 2, steps=8)  # left: stays inside the track
    page.mouse.up()
    start = time.perf_counter()
    changed = "([img, old]) => img.src !== old"
    try:
        page.wait_for_function(changed, arg=[image.element_handle(), old_src], timeout=15_000)
    except Exception:  # the drag did not register (seen now and then): the slider's keyboard control
        handle.focus()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(changed, arg=[image.element_handle(), old_src], timeout=30_000)
    print(f"slider released -> new picture in the browser: {1000 * (time.perf_counter() - start):.0f} ms")

    image.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.fixture(scope="module")
def lab_and_browser():
    """One JupyterLab and one headless Chromium for the module's tests; `home` is a fresh folder
    under build/ (inside the server's root_dir, git-ignored) for the notebooks they open. Every
    process started here is stopped at the end, also when a test failed."""
    require_browser()
    from playwright.sync_api import sync_playwright

    (ROOT / "build").mkdir(exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="browser-test-", dir=ROOT / "build"))
    lab = Lab(home)
    try:
        lab.wait_until_up()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                yield lab, browser, home
            finally:
                browser.close()
    finally:
        lab.stop()
    shutil.rmtree(home, ignore_errors=True)  # kept after an error: its jupyterlab.log tells why


def check_in_browser(lab_and_browser, notebook, name):
    """Run a COPY of a notebook (the check saves it) in the browser; on failure, a screenshot
    goes to build/screenshots/<name>-failed.png."""
    lab, browser, _ = lab_and_browser
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        run_all_and_check(page, lab, notebook, name)
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-failed.png"))
        raise
    finally:
        page.close()


def test_explorers_in_a_real_browser(lab_and_browser):
    notebook = lab_and_browser[2] / "explorers.ipynb"
    write_notebook(notebook, EXPLORERS_NOTEBOOK)
    check_in_browser(lab_and_browser, notebook, "explorers")


@pytest.mark.parametrize("lang", ["en", "ru", "zh", "pt", "fr"])
def test_a_lesson_in_each_language_in_a_real_browser(lab_and_browser, lang):
    """Lesson 01 as a student runs it: all cells, its explorer drawn and answering a slider."""
    copy = lab_and_browser[2] / f"{lang}_01.ipynb"
    shutil.copy(ROOT / "notebooks" / lang / "01_exploding_gradients.ipynb", copy)
    check_in_browser(lab_and_browser, copy, f"lesson01_{lang}")
