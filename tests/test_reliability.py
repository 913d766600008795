"""A lesson run from a clean kernel is repeatable, tells the story that was committed, and writes
nothing outside the data cache and the repository's git-ignored folders.

What "the same story" means (the rule is also in the README, "How the tests check the lessons"):

- **On one machine a lesson is repeatable**: two fresh runs in a row print exactly the same text,
  digit for digit (same seed, same CPU kernels, one torch thread).
- **On any machine a fresh run tells the committed story**: every code cell prints the same number
  of lines, and each line has the same words, labels, verdicts and claims, in the same order. Only
  the numbers may differ: every numeral (`3`, `-0.52`, `4.32e+11`, `67.0%`) is replaced by `#` and
  runs of spaces by one before the comparison. Another CPU (AVX-512, AVX2 or scalar kernels) rounds
  float32 sums differently, and a chaotic training run amplifies the last bit into other leading
  digits (a final loss of 4.74 on one machine, 5.46 on another), so no digit is part of the story.
  What the numbers *mean* is: each lesson states it with `ck.claim(...)` (a threshold with a wide
  margin, checked by nbval with several seeds and CPU kernels), and a claim's line has no
  run-dependent number, so it must match word for word. `nan` and `inf` count as one word, "not
  finite": which of the two a diverging run hits first is a matter of rounding too.

A lesson whose message changed fails: a verdict word that flips (`healthy` -> `vanishing`), a run
that now diverges (`finite` -> `NaN/Inf at step #`, or an extra "Stopped at step" line), a claim that
is reworded or missing, a label that changed, a cell that prints more or fewer lines.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = sorted((ROOT / "notebooks" / "en").glob("*.ipynb"))
JUPYTER = str(Path(sys.executable).with_name("jupyter"))
NUMERAL = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
NOT_FINITE = re.compile(r"[-+]?\b(?:nan|inf)\b", re.IGNORECASE)


def printed_text(nb):
    """What each code cell printed (stdout and the text of its results), cell by cell; progress bars
    are widgets, warnings go to stderr: neither is part of what a lesson says."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        text = ""
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text += "".join(out.get("text", ""))
            elif out.get("output_type") == "execute_result":
                text += "".join(out.get("data", {}).get("text/plain", "")) + "\n"
        cells.append(text)
    return cells


def story(line):
    """A printed line with its numbers masked: what must be the same on every machine."""
    return " ".join(NUMERAL.sub("#", NOT_FINITE.sub("NaN/Inf", line)).split())


def story_of(nb):
    return [[story(line) for line in text.splitlines()] for text in printed_text(nb)]


def story_differences(fresh, committed):
    """The cells and lines where a fresh run's story differs from the committed one ([] when none)."""
    out = []
    for index, (new, old) in enumerate(zip(story_of(fresh), story_of(committed))):
        if len(new) != len(old):
            out.append(f"code cell {index}: {len(new)} lines printed, {len(old)} committed")
        out += [f"code cell {index}: {a!r} != committed {b!r}" for a, b in zip(new, old) if a != b]
    if len(fresh.cells) != len(committed.cells):
        out.append(f"{len(fresh.cells)} cells, {len(committed.cells)} committed")
    return out


def run_fresh(path, folder):
    """Execute the lesson from a clean kernel with the seed it was committed with (COURSEKIT_SEED unset)."""
    env = {k: v for k, v in os.environ.items() if k != "COURSEKIT_SEED"}
    done = subprocess.run([JUPYTER, "nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=300",
                           "--output-dir", str(folder), str(path)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{path.name} did not run:\n{done.stderr[-3000:]}"
    return nbformat.read(folder / path.name, as_version=4)


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: p.stem)
def test_a_lesson_is_repeatable_and_tells_the_committed_story(path, tmp_path):
    first, second = run_fresh(path, tmp_path / "first"), run_fresh(path, tmp_path / "second")  # one after the other:
    # two kernels started at the same moment can race for the same ports, and the second fails to start
    assert printed_text(first) == printed_text(second), "two runs on one machine printed different text"
    assert story_differences(first, nbformat.read(path, as_version=4)) == []


def test_the_story_rule_ignores_digits_and_catches_a_changed_message():
    committed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text="lr=0.001   finite   final loss 4.74, test accuracy 11.8%\n"
                                      "N(0, 1): exploding: the largest gradient norm is 2.9e+06 (layer blocks.0)\n"
                                      "✓ over 1000x\n")])])

    def printing(text):
        nb = nbformat.from_dict(committed)
        nb.cells[0].outputs[0].text = text
        return nb

    other_cpu = printing("lr=0.001 finite  final loss 5.46, test accuracy 12.0%\n"
                         "N(0, 1): exploding: the largest gradient norm is 4.0e+06 (layer blocks.0)\n✓ over 1000x\n")
    assert story_differences(other_cpu, committed) == []
    assert story_differences(printing(other_cpu.cells[0].outputs[0].text.replace("5.46", "inf")),
                             printing(committed.cells[0].outputs[0].text.replace("4.74", "nan"))) == []
    for changed in ("lr=0.001   NaN at step 3   final loss nan, test accuracy 10.0%\n"
                    "N(0, 1): exploding: the largest gradient norm is 2.9e+06 (layer blocks.0)\n✓ over 1000x\n",
                    "lr=0.001   finite   final loss 4.74, test accuracy 11.8%\n"
                    "N(0, 1): healthy: the largest gradient norm is 2.9e+06 (layer blocks.0)\n✓ over 1000x\n",
                    "lr=0.001   finite   final loss 4.74, test accuracy 11.8%\n"
                    "N(0, 1): exploding: the largest gradient norm is 2.9e+06 (layer blocks.0)\n",
                    "Stopped at step 3: the loss is nan.\nlr=0.001   finite   final loss 4.74, test accuracy 11.8%\n"
                    "N(0, 1): exploding: the largest gradient norm is 2.9e+06 (layer blocks.0)\n✓ over 1000x\n"):
        assert story_differences(printing(changed), committed) != [], changed


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
    subprocess.run([JUPYTER, "nbconvert", "--to", "notebook", "--execute",
                    "--stdout", str(ENGLISH[0])], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    new_in_repo = {line[3:] for line in untracked_and_ignored() - before}
    assert all(p.startswith(("data/", "build/")) or "__pycache__" in p for p in new_in_repo), new_in_repo
    strays = [f for f in files_under(home) if not f.startswith(ALLOWED_IN_HOME)]
    assert strays == [], f"written into $HOME: {strays}"
