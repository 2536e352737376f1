"""What pinning the CPU kernels' vector ISA (params.yaml compute.cpu_isa) costs: one LeNet-5
MNIST epoch (scripts/train.py, the recipe's params) and ResNet-18 training steps at 64 px
(the Tiny ImageNet recipe's model, batch 64), each side in a fresh process, under each pin and
unpinned (`host`: the CPU's widest). Writes JSON.

Sides interleaved (A B C, A B C, ...), --repeats rounds, compute.torch_threads' thread count.
The epoch figure is the epoch's seconds from the run's times CSV (train + validation, no
start-up); the step figure is the median of --steps timed steps after two warm-up steps.
Ratios are the pin's seconds over unpinned (> 1: the pin is slower).
`python benchmarks/bench_cpu_isa.py --resnet-steps N --cpu-isa X` is one ResNet side (a child).
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import context, write_result  # first: this tree's imgdag

from bench_threads import epoch_seconds, make_caches, summary

SIDES = ["sse41", "avx2", "host"]


def resnet_steps(steps: int, threads: int) -> float:
    """Median seconds of one ResNet-18 (64 px, 200 classes, batch 64) SGD step, in this process
    (pinned to its --cpu-isa when imgdag.threads loads, before torch)."""
    import imgdag.threads  # noqa: F401
    import torch

    from imgdag.models import build_model
    from imgdag.threads import use_threads

    use_threads(threads)
    torch.manual_seed(0)
    model = build_model("resnet18_64px", 200, stem="imagenet")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(64, 3, 64, 64), torch.randint(0, 200, (64,))
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def ratios(stats: dict) -> dict:
    host = stats["host"]
    return {side: {"median": round(s["median_s"] / host["median_s"], 3),
                   "min": round(s["min_s"] / host["min_s"], 3)}
            for side, s in stats.items() if side != "host"}


def main() -> None:
    from imgdag.cli import parser

    p = parser(__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-images", type=int, default=4000)
    p.add_argument("--steps", type=int, default=5, help="timed ResNet-18 steps per side")
    p.add_argument("--threads", type=int, default=2, help="torch threads (compute.torch_threads)")
    p.add_argument("--resnet-steps", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cpu-isa", help=argparse.SUPPRESS)  # the child's, read by imgdag.threads
    p.add_argument("--quick", action="store_true", help="smoke test: 1 repeat, 1,000 images, 1 step")
    p.add_argument("--out", help="JSON output (default benchmarks/out/cpu_isa.json)")
    args = p.parse_args()
    if args.resnet_steps:  # a child: one ResNet side
        print(json.dumps(resnet_steps(args.resnet_steps, args.threads)))
        return
    if args.quick:
        args.repeats, args.train_images, args.steps = 1, 1000, 1
    started = context()
    epochs, steps = {s: [] for s in SIDES}, {s: [] for s in SIDES}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = make_caches(folder, args.train_images)
        for repeat in range(args.repeats):
            for side in SIDES:
                epochs[side].append(epoch_seconds(folder, f"{side}-{repeat}", args.threads,
                                                  {}, ["--torch-threads", str(args.threads),
                                                       "--cpu-isa", side]))
                child = subprocess.run([sys.executable, __file__, "--resnet-steps", str(args.steps),
                                        "--threads", str(args.threads), "--cpu-isa", side],
                                       check=True, capture_output=True, text=True)
                steps[side].append(float(child.stdout.split()[-1]))
    result = {**started, "source": source, "repeats": args.repeats, "quick": args.quick,
              "torch_threads": args.threads, "workloads": {}}
    for name, values in (("lenet5_mnist_epoch", epochs), ("resnet18_64px_step", steps)):
        stats = {side: summary(v) for side, v in values.items()}
        result["workloads"][name] = {"sides": stats, "pinned_over_unpinned": ratios(stats)}
    write_result("cpu_isa", result, args.out)


if __name__ == "__main__":
    main()
