"""A lesson run from a clean kernel is repeatable, and writes nothing outside the data cache and
the repository's git-ignored folders."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = sorted((ROOT / "notebooks" / "en").glob("*.ipynb"))


def printed_text(nb):
    """Everything the cells printed (stdout), cell by cell; progress bars are widgets, not text."""
    return ["".join("".join(o.get("text", "")) for o in c.get("outputs", []) if o.get("output_type") == "stream"
                    and o.get("name") == "stdout") for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_a_second_run_prints_exactly_what_was_committed(path):
    committed = nbformat.read(path, as_version=4)
    fresh = nbformat.read(path, as_version=4)
    env_seed = os.environ.pop("COURSEKIT_SEED", None)
    try:
        NotebookClient(fresh, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        if env_seed is not None:
            os.environ["COURSEKIT_SEED"] = env_seed
    assert printed_text(fresh) == printed_text(committed)


def untracked_and_ignored():
    out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


def files_under(folder):
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


ALLOWED_IN_HOME = (".ipython/", ".local/share/jupyter/", ".cache/matplotlib/", ".config/matplotlib/", ".jupyter/",
                   ".cache/fontconfig/")


def test_a_lesson_writes_only_where_it_may(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    home = tmp_path / "home"
    home.mkdir()
    before = untracked_and_ignored()
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "JUPYTER_DATA_DIR", "IPYTHONDIR")}
    env["HOME"] = str(home)
    subprocess.run([str(Path(sys.executable).with_name("jupyter")), "nbconvert", "--to", "notebook", "--execute",
                    "--stdout", str(ENGLISH[0])], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    new_in_repo = {line[3:] for line in untracked_and_ignored() - before}
    assert all(p.startswith(("data/", "build/")) or "__pycache__" in p for p in new_in_repo), new_in_repo
    strays = [f for f in files_under(home) if not f.startswith(ALLOWED_IN_HOME)]
    assert strays == [], f"written into $HOME: {strays}"
