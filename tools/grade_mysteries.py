"""Lesson 07's mysteries as graded work.

    python tools/grade_mysteries.py key 101 102 103        the cause of each mystery, for these seeds
    python tools/grade_mysteries.py grade alice.ipynb ...  run each submitted notebook from a clean kernel
                                                          and report which mysteries it solves

Give every student a seed (for example 100 + their number in the class list): they write it in the
setup cell (SEED = ...). A mystery counts as solved only when the notebook, executed here from the
top, ends with an answer (the last m<k>.check(cause=..., fix=...)) that is checked again here on a
fresh mystery: the cause is right and the fix makes the run learn. Outputs saved in the submitted
file are not trusted; the number of checks a student ran is reported beside it. Executing a
notebook runs its code: grade in a container or a throw-away account.
"""

import argparse
import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import coursekit as ck  # noqa: E402

# Run after the student's notebook, in its kernel: each answer the student's last check was given is
# checked again on a fresh mystery of the same number and seed, so no flag the notebook set counts.
REPORT = """
import contextlib as _contextlib, io as _io, json as _json
import coursekit as _ck
_mysteries = {}
for _k in range(1, _ck.mysteries.MYSTERIES + 1):
    _m = globals().get(f"m{_k}")
    _ok = False
    if isinstance(_m, _ck.Mystery) and _m.answer is not None:
        with _contextlib.redirect_stdout(_io.StringIO()):
            _ok = _ck.mystery(_k, seed=_m.seed).check(*_m.answer)
    _mysteries[_k] = {"solved": bool(_ok), "attempts": getattr(_m, "attempts", 0),
                      "seed": getattr(_m, "seed", None)}
print("GRADE" + _json.dumps({"seed": SEED, "mysteries": _mysteries}))
"""


def key(seeds):
    print("seed  " + "  ".join(f"mystery {k}" for k in range(1, ck.mysteries.MYSTERIES + 1)))
    for seed in seeds:
        causes = [ck.mystery(k, seed=seed)._cause for k in range(1, ck.mysteries.MYSTERIES + 1)]
        print(f"{seed:<5d} " + "  ".join(f"{c:22s}" for c in causes))


def grade(path, timeout):
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(REPORT))
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(Path(path).resolve().parent)}}).execute()
    for output in nb.cells[-1].get("outputs", []):
        text = output.get("text", "")
        if text.startswith("GRADE"):
            return json.loads(text[len("GRADE"):])
    return None  # the notebook stopped before the end: see its errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("key", help="the answer key for some seeds")
    p.add_argument("seeds", nargs="+", type=int)
    p = sub.add_parser("grade", help="execute submitted notebooks and count the solved mysteries")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.command == "key":
        key(args.seeds)
        return
    for path in args.notebooks:
        result = grade(path, args.timeout)
        if result is None:
            print(f"{path}: did not run to the end")
            continue
        solved = [k for k, m in result["mysteries"].items() if m["solved"]]
        tries = ", ".join(f"{k}: {m['attempts']}" for k, m in result["mysteries"].items())
        other = sorted({m["seed"] for m in result["mysteries"].values() if m["seed"] not in (None, result["seed"])})
        print(f"{path}: seed {result['seed']}, solved {len(solved)} of {len(result['mysteries'])} "
              f"(mysteries {', '.join(solved) or '-'}); checks run per mystery {tries}"
              + (f"; other seeds used: {other}" if other else ""))


if __name__ == "__main__":
    main()
