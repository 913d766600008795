"""The course's speed, measured: run with `make bench` (or .venv/bin/python benchmarks/run.py).

Prints a table and writes benchmarks/results/bench.json (git-ignored). Each number is the median of
several runs on this machine. Targets (see README, Measurements):
  lesson, clean kernel, Restart & Run All  <= 30 s      whole test suite                  <= 10 min
  coursekit loop vs seed 002's loop        >= 5x        diagnostics overhead per step     <= 15 %
  explorer update                          <= 300 ms    peak memory of a lesson kernel    (reported)
  Monitor recording every step             <= 10 %         ck.doctor on a course model        a few seconds
"""

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PY = sys.executable
JUPYTER = str(Path(PY).with_name("jupyter"))


def run_notebook(path):
    """Restart & Run All from a clean kernel (kernel start included): seconds, peak kernel RSS in MB."""
    start = time.perf_counter()
    subprocess.run([JUPYTER, "nbconvert", "--to", "notebook", "--execute", "--stdout", str(path)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest child so far (Linux: KiB)
    return seconds, peak_mb


def bench_notebooks(langs, repeat):
    rows = {}
    for lang in langs:
        for path in sorted((ROOT / "notebooks" / lang).glob("*.ipynb")):
            runs = [run_notebook(path) for _ in range(repeat)]
            rows[f"{lang}/{path.name}"] = {"median_s": statistics.median(r[0] for r in runs),
                                           "max_s": max(r[0] for r in runs), "peak_rss_mb_so_far": runs[-1][1]}
            print(f"  {lang}/{path.name:34s} {rows[f'{lang}/{path.name}']['median_s']:6.1f} s", flush=True)
    return rows


def bench_test_suite():
    start = time.perf_counter()
    done = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:randomly"], cwd=ROOT, capture_output=True, text=True)
    return {"seconds": time.perf_counter() - start, "exit_code": done.returncode,
            "summary": done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""}


class SeedMLP(nn.Module):
    """Seed 002's model: 784 -> 128 (tanh) -> 10, parameters N(0, 1)."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2 = nn.Linear(784, 128), nn.Linear(128, 10)

    def forward(self, x):
        return self.l2(torch.tanh(self.l1(x.flatten(1))))


def seed_002_loop(steps, batch_size, lr=0.1):
    """Seed 002's loop: a DataLoader over torchvision's dataset, ToTensor on every item, manual SGD."""
    import torchvision
    from torch.utils.data import DataLoader

    import coursekit as ck

    root = ck.ensure_files("fashion_mnist")
    dataset = torchvision.datasets.FashionMNIST(root, train=True, download=False,
                                                transform=torchvision.transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    torch.manual_seed(0)
    model = SeedMLP()
    start = time.perf_counter()
    step = 0
    while step < steps:
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= lr * p.grad
                    p.grad = None
            loss.item()
            step += 1
            if step == steps:
                break
    return time.perf_counter() - start


def coursekit_loop(steps, batch_size, monitor=True, lr=0.1):
    import coursekit as ck

    X, y, _, _ = ck.load_data(n_train=None, n_test=100)
    torch.manual_seed(0)
    model = SeedMLP()
    start = time.perf_counter()
    ck.train(model, X, y, steps=steps, lr=lr, batch_size=batch_size, monitor=monitor, progress=False)
    return time.perf_counter() - start


def bench_loops(repeat, steps=1000, batch_size=32):
    seed = statistics.median(seed_002_loop(steps, batch_size) for _ in range(repeat))
    ours = statistics.median(coursekit_loop(steps, batch_size) for _ in range(repeat))
    return {"steps": steps, "batch_size": batch_size, "seed_002_s": seed, "coursekit_s": ours, "speedup": seed / ours}


def bench_hooks(repeat, steps=500):
    """Cost of the diagnostics: ck.train with monitor=True vs False, on lesson 01's 20-layer net."""
    import coursekit as ck

    X, y, _, _ = ck.load_data(n_train=10000, n_test=100)

    def once(monitor):
        torch.manual_seed(0)
        model = ck.mlp(depth=20, width=64, activation="tanh", init="xavier")
        start = time.perf_counter()
        ck.train(model, X, y, steps=steps, monitor=monitor, progress=False)
        return time.perf_counter() - start

    plain = statistics.median(once(False) for _ in range(repeat))
    watched = statistics.median(once(True) for _ in range(repeat))
    return {"steps": steps, "plain_s": plain, "monitored_s": watched, "overhead": watched / plain - 1}


def bench_monitor(repeat, steps=200, batch_size=64, width=64, record_every=1):
    """Cost of ck.Monitor recording every step (forward statistics, a histogram and the backward
    statistics of every layer) in a plain training loop of a 20-layer tanh MLP, turning them into records
    at the end included. The two loops are interleaved, so that a busy machine slows both alike."""
    import coursekit as ck

    X, y, _, _ = ck.load_data(n_train=10000, n_test=100)

    def once(watch):
        torch.manual_seed(0)
        model = ck.mlp(depth=20, width=width, activation="tanh", init="xavier")
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        mon = ck.Monitor(model, keep_last=False, record_every=record_every) if watch else None
        start = time.perf_counter()
        for step in range(steps):
            idx = slice((step * batch_size) % 9000, (step * batch_size) % 9000 + batch_size)
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if mon is not None:
            mon.remove()  # the statistics still held as tensors become records: part of the cost
            assert len(mon.stats["blocks.0.act"]) == steps // record_every
        return time.perf_counter() - start

    plain, watched = [], []
    for _ in range(repeat):
        plain.append(once(False))
        watched.append(once(True))
    plain, watched = statistics.median(plain), statistics.median(watched)
    return {"steps": steps, "batch_size": batch_size, "width": width, "record_every": record_every,
            "plain_s": plain, "monitored_s": watched, "overhead": watched / plain - 1}


def doctor_models():
    """The course's models (lessons 01, 02, 06, the sequence task), a small CNN: (name, model, X, y, options)."""
    import coursekit as ck

    X, y, _, _ = ck.load_data("fashion_mnist", n_train=5000, n_test=100)
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
    tokens, targets = ck.make_copy_task(2048, seed=0)
    sequences, labels = ck.make_sequence_task(1000, length=50)
    adam = dict(optimizer="adam", lr=1e-3)
    return [("MLP 20x64 tanh N(0,1), L01", ck.mlp(20, 64, "tanh", init="normal", std=1.0), X, y, {}),
            ("MLP 10x64 sigmoid, L02/L07", ck.mlp(10, 64, "sigmoid"), X, y, {}),
            ("LSTM 32, T=50, L01/L02", ck.rnn_classifier("lstm"), sequences, labels, adam),
            ("CNN, 2 conv layers", cnn, X.reshape(-1, 1, 28, 28), y, dict(lr=0.05)),
            ("Transformer 8 blocks, L06", ck.transformer(depth=8, norm_first=False, seed=0), tokens, targets,
             dict(adam, loss_fn=ck.token_cross_entropy, batch_size=32))]


def bench_doctor(repeat):
    import coursekit as ck

    rows = {}
    for name, model, X, y, options in doctor_models():
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            ck.doctor(model, X, y, **options)
            times.append(time.perf_counter() - start)
        rows[name] = {"median_s": statistics.median(times), "max_s": max(times)}
        print(f"  ck.doctor, {name:32s} {rows[name]['median_s']:5.2f} s", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (the median is kept)")
    parser.add_argument("--langs", nargs="+", default=["en"], help="notebook languages to time (all: en ru zh pt fr)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["notebooks", "suite", "loops", "hooks", "monitor", "widgets", "doctor"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as ck.setup() does for the lessons
    results = {"machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version(), "torch": torch.__version__},
               "repeat": args.repeat}
    if "loops" not in args.skip:
        print("training loop: coursekit vs seed 002 ...", flush=True)
        results["loops"] = bench_loops(args.repeat)
    if "hooks" not in args.skip:
        print("diagnostics overhead ...", flush=True)
        results["hooks"] = bench_hooks(args.repeat)
    if "monitor" not in args.skip:
        print("Monitor recording every step ...", flush=True)
        results["monitor"] = bench_monitor(max(args.repeat, 5))
        results["monitor_every_10"] = bench_monitor(max(args.repeat, 5), record_every=10)
        results["monitor_wide"] = bench_monitor(max(args.repeat, 5), steps=50, batch_size=256, width=512)
    if "widgets" not in args.skip and (ROOT / "benchmarks" / "widget_latency.py").exists():
        print("explorer latency ...", flush=True)
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import widget_latency

        results["widgets"] = widget_latency.measure()
    if "doctor" not in args.skip:
        print("ck.doctor on the course's models ...", flush=True)
        results["doctor"] = bench_doctor(args.repeat)
    if "notebooks" not in args.skip:
        print("notebooks, clean kernel each ...", flush=True)
        results["notebooks"] = bench_notebooks(args.langs, args.repeat)
        results["peak_kernel_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if "suite" not in args.skip:
        print("whole test suite ...", flush=True)
        results["suite"] = bench_test_suite()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps(results, indent=1))
    print_table(results)


def print_table(r):
    print(f"\n{'measurement':44s} {'value':>14s}  target")
    if "loops" in r:
        print(f"{'loop speed-up vs seed 002 (1000 steps, B=32)':44s} {r['loops']['speedup']:13.1f}x  >= 5x")
    if "hooks" in r:
        print(f"{'diagnostics overhead per step':44s} {100 * r['hooks']['overhead']:12.0f} %  <= 15 %")
    if "monitor" in r:
        print(f"{'Monitor every step, 20 layers of 64, B=64':44s} {100 * r['monitor']['overhead']:12.0f} %  <= 10 %")
        print(f"{'Monitor every 10th step, the same net':44s} {100 * r['monitor_every_10']['overhead']:12.0f} %")
        print(f"{'Monitor every step, 20 layers of 512, B=256':44s} {100 * r['monitor_wide']['overhead']:12.0f} %")
    for name, w in r.get("widgets", {}).items():
        print(f"{'explorer ' + name + ' update (median)':44s} {w['median_ms']:11.0f} ms  <= 300 ms")
    for name, d in r.get("doctor", {}).items():
        print(f"{'ck.doctor, ' + name:44s} {d['median_s']:12.2f} s  a few seconds")
    for name, n in r.get("notebooks", {}).items():
        print(f"{name:44s} {n['median_s']:12.1f} s  <= 30 s")
    if "peak_kernel_rss_mb" in r:
        print(f"{'peak memory of a lesson kernel':44s} {r['peak_kernel_rss_mb']:11.0f} MB")
    if "suite" in r:
        print(f"{'whole test suite':44s} {r['suite']['seconds']:12.0f} s  <= 600 s   ({r['suite']['summary']})")


if __name__ == "__main__":
    main()
