"""How long an explorer takes to answer a change of one control, in the kernel: compute (or look
up) the setting, draw the figure, encode the PNG, hand it to the Image widget. The browser adds
a few ms to show it.

    .venv/bin/python benchmarks/widget_latency.py        (also run by benchmarks/run.py)

Prints a table and writes benchmarks/results/widget_latency.json (git-ignored). Target: a median
of at most 300 ms per explorer. Each change below is a setting the explorer has not shown before,
so explore_depth's numbers include its forward/backward pass.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coursekit import make_copy_task, transformer, widgets  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TARGET_MS = 300

def loss_scale_explorer():
    """Lesson 06's explorer on its 8-block Pre-LN net and a batch of 128 sequences."""
    X, y = make_copy_task(128, seed=1)
    return widgets.loss_scale_explorer(transformer(depth=8, norm_first=True, seed=0), X, y)


CHANGES = {
    "depth": (widgets.depth_explorer, [("depth", d) for d in (3, 6, 15, 20, 30)] + [("activation", "relu"), ("init", "kaiming"),
              ("depth", 12), ("activation", "sigmoid"), ("init", "xavier"), ("init", "normal"), ("std", 0.1), ("std", 3.0)]),
    "batchnorm": (widgets.batchnorm_explorer, [("batchnorm", True), ("lr", 1.0), ("batchnorm", False), ("init", "N(0, 1)"),
                  ("batchnorm", True), ("lr", 0.01), ("init", "xavier"), ("batchnorm", False), ("lr", 0.1), ("init", "default")]),
    "clipping": (widgets.clipping_explorer, [("mode", "none"), ("mode", "value"), ("threshold", 0.01), ("mode", "norm"),
                 ("threshold", 100.0), ("mode", "value"), ("threshold", 10.0), ("mode", "norm"), ("threshold", 0.1), ("mode", "none")]),
    "loss_scale": (loss_scale_explorer, [("exponent", e) for e in (4, 8, 12, 16, 24, 32)] + [("dtype", "bfloat16"),
                   ("exponent", 10), ("exponent", 0), ("dtype", "float16")]),
}


def _changes(explorer, changes):
    """Wall-clock and CPU milliseconds of each change (CPU time: what the change costs on an idle
    machine; on a busy one, the wall clock is longer)."""
    wall, cpu = [], []
    for control, value in changes:
        start, start_cpu = time.perf_counter(), time.process_time()
        explorer.controls[control].value = value
        wall.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
    return wall, cpu


def measure():
    """{explorer: {median_ms, max_ms, changes, build_s, seen_median_ms}}. The first pass over the
    changes draws settings not seen before (the target applies to it); the second pass shows
    the same settings again, from the explorer's cache of pictures."""
    results = {}
    for name, (make, changes) in CHANGES.items():
        start = time.perf_counter()
        explorer = make()
        build_s = time.perf_counter() - start
        start_settings = explorer.settings()
        first, first_cpu = _changes(explorer, changes)
        _changes(explorer, start_settings.items())  # back to the start, untimed
        again, _ = _changes(explorer, changes)
        results[name] = {"median_ms": statistics.median(first), "max_ms": max(first), "changes": len(first),
                         "cpu_median_ms": statistics.median(first_cpu), "cpu_max_ms": max(first_cpu),
                         "build_s": build_s, "seen_median_ms": statistics.median(again)}
    return results


def main():
    load = os.getloadavg()[0]
    results = measure()
    print(f"new setting, wall clock (target: median <= {TARGET_MS} ms) and CPU time; {os.cpu_count()} CPUs, "
          f"load average {load:.1f} before the run")
    print(f"{'explorer':12s}{'median':>10s}{'max':>10s}{'cpu median':>12s}{'cpu max':>10s}{'changes':>9s}{'build':>9s}"
          f"{'seen before':>13s}")
    for name, r in results.items():
        print(f"{name:12s}{r['median_ms']:7.0f} ms{r['max_ms']:7.0f} ms{r['cpu_median_ms']:9.0f} ms{r['cpu_max_ms']:7.0f} ms"
              f"{r['changes']:9d}{r['build_s']:7.1f} s{r['seen_median_ms']:10.1f} ms")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "widget_latency.json").write_text(json.dumps({"load_average": load, "explorers": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
