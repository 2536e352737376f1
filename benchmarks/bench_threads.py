"""One MNIST training epoch (scripts/train.py, LeNet-5, the recipe's params) under each thread
count, on a quiet machine and with two CPU-bound competitor processes. Writes JSON.

Sides, interleaved (A B C, A B C, ...): the rule's threads (mnist_train declares
`threads: workflow.cores`, the machine's cores under `--cores all`), 1 thread, 2 threads; with
--spinning also 2 threads with OpenMP spinning as before the fix (GOMP_SPINCOUNT=300000,
libgomp's default when OMP_WAIT_POLICY is unset), which shows the cause (slow: ~10x). The figure is the epoch's `seconds`
from the run's times CSV (train + validation, no start-up). Competitors are busy loops that stop
themselves after a bounded time and are ended when the run is done.
"""
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from timing import REALDATA, ROOT, context, write_result

MNIST = REALDATA / "mnist"
BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"


def make_caches(folder: Path, train_count: int) -> str:
    """MNIST train/val array caches: real t10k digits when present, else the demo; the source."""
    sys.path.insert(0, str(ROOT))
    from imgdag.arraycache_writer import write_images_cache
    from imgdag.demo.mnist import make_demo_mnist
    from imgdag.layouts.mnist_idx import read_split

    raw, split = MNIST, "test"
    if not (raw / "t10k-images-idx3-ubyte.gz").exists():
        make_demo_mnist(folder / "demo")
        raw, split = folder / "demo", "train"
    images, labels = read_split(raw, split)
    train_count = min(train_count, len(labels) * 4 // 5)
    parts = {"train": slice(0, train_count), "val": slice(train_count, None)}
    for name, part in parts.items():
        items = ((str(i), image[..., None], int(label))
                 for i, (image, label) in enumerate(zip(images[part], labels[part])))
        write_images_cache(folder / name, len(labels[part]), items, str(raw))
    return f"{raw} ({split}: {train_count} train, {len(labels) - train_count} val)"


def epoch_seconds(folder: Path, run: str, threads: int, env: dict, extra=()) -> float:
    """Train one epoch in a fresh process (`extra`: more train.py arguments); the epoch's seconds
    from its times CSV."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    train = {**params["recipes"]["mnist_lenet5"]["train"], "epochs": 1, "device": "cpu"}
    out = folder / run
    subprocess.run([sys.executable, str(ROOT / "scripts/train.py"),
                    "--train-cache", str(folder / "train"), "--val-cache", str(folder / "val"),
                    "--params", json.dumps(train), "--model-out", str(out / "model.pt"),
                    "--log-csv", str(out / "log.csv"), "--times-csv", str(out / "times.csv"),
                    "--checkpoint-dir", str(out / "ckpt"),
                    "--threads", str(threads), *extra],
                   check=True, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                   stdout=subprocess.DEVNULL)
    with open(out / "times.csv") as f:
        return float(list(csv.DictReader(f))[-1]["seconds"])


def summary(values: list[float]) -> dict:
    return {"median_s": round(statistics.median(values), 3), "min_s": round(min(values), 3),
            "runs_s": [round(v, 3) for v in values]}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from imgdag.cli import parser

    p = parser(__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-images", type=int, default=8000)
    p.add_argument("--rule-threads", type=int, default=os.cpu_count(),
                   help="what the rule gives train.py (workflow.cores under --cores all)")
    p.add_argument("--spinning", action="store_true",
                   help="add the side that spins as before the fix")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 1 repeat on 1,000 images (figures not meaningful)")
    p.add_argument("--out", help="JSON output (default benchmarks/out/threads.json)")
    args = p.parse_args()
    if args.quick:
        args.repeats, args.train_images = 1, 1000
    started = context()
    sides = {f"rule ({args.rule_threads})": (args.rule_threads, {}), "1 thread": (1, {}),
             "2 threads": (2, {})}
    if args.spinning:
        sides["2 threads, spinning (before the fix)"] = (2, {"GOMP_SPINCOUNT": "300000"})
    conditions = {"quiet": 0, "two CPU-bound competitors": 2}
    times = {c: {s: [] for s in sides} for c in conditions}
    loads = {c: [] for c in conditions}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = make_caches(folder, args.train_images)
        for repeat in range(args.repeats):
            for condition, competitors in conditions.items():
                for side, (threads, env) in sides.items():
                    busy = [subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=300)])
                            for _ in range(competitors)]
                    try:
                        if busy:
                            time.sleep(0.5)
                        loads[condition].append(os.getloadavg()[0])
                        run = f"{condition}-{side}-{repeat}".replace(" ", "_")
                        times[condition][side].append(epoch_seconds(folder, run, threads, env))
                    finally:
                        for process in busy:
                            process.kill()
                            process.wait()
    result = {**started, "source": source, "repeats": args.repeats, "quick": args.quick,
              "cpu_count": os.cpu_count(), "rule_threads": args.rule_threads, "conditions": {}}
    for condition in conditions:
        stats = {side: summary(values) for side, values in times[condition].items()}
        best = min(s["median_s"] for side, s in stats.items() if "before" not in side)
        rule = stats[f"rule ({args.rule_threads})"]["median_s"]
        result["conditions"][condition] = {
            "sides": stats, "rule_over_best": round(rule / best, 3),
            "load_average_1min": [round(v, 2) for v in loads[condition]]}
    write_result("threads", result, args.out)


if __name__ == "__main__":
    main()
