"""What every benchmark here shares: interleaved repeats, median + min, load average, peak
memory of a command's whole process tree, the real data (IMGDAG_REALDATA, else ../shared/realdata),
and the JSON output.

Data you held out, in place of the shared samples (docs/benchmarks.md, "On your own data"):
IMGDAG_BENCH_JPEGS, a folder of JPEGs (searched through its subfolders: a class-folder tree will
do) for the codec, packing and `.rec` loader benchmarks; IMGDAG_BENCH_TINY, a Tiny ImageNet
folder (tiny-imagenet-200, its train/ read) for the small-image benchmarks."""
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks measure this tree's imgdag

MXNET_PYTHON = ROOT / ".venv-mxnet" / "bin" / "python"
REALDATA = Path(os.environ.get("IMGDAG_REALDATA", ROOT.parent / "shared" / "realdata"))  # as the tests find it
IMAGENET_SAMPLE = REALDATA / "imagenet-sample"  # 100 JPEGs, one per class, named <wnid>_<name>.JPEG
JPEGS = Path(os.environ.get("IMGDAG_BENCH_JPEGS") or IMAGENET_SAMPLE)
TINY = Path(os.environ.get("IMGDAG_BENCH_TINY") or REALDATA / "tiny-imagenet-200")
OUT = ROOT / "benchmarks" / "out"


def real_jpegs() -> list[Path]:
    """The JPEGs under JPEGS, subfolders included, sorted (exits with a reason when there are none).
    A packed `.lst` names them relative to JPEGS (`jpeg_name`)."""
    paths = sorted(p for p in JPEGS.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg") and p.is_file())
    if not paths:
        sys.exit(f"no JPEGs under {JPEGS} (set IMGDAG_REALDATA, or IMGDAG_BENCH_JPEGS to a folder of JPEGs)")
    return paths


def jpeg_name(path: Path) -> str:
    """A real_jpegs() file as a `.lst` names it: relative to JPEGS, the image root."""
    return path.relative_to(JPEGS).as_posix()


def sample_jpegs() -> list[Path]:
    """The shared sample's 100 JPEGs, one per class, in WNID order (the scale benchmarks' classes)."""
    paths = sorted(IMAGENET_SAMPLE.glob("*.JPEG"))
    if not paths:
        sys.exit(f"no real JPEGs under {IMAGENET_SAMPLE} (set IMGDAG_REALDATA)")
    return paths


def jpegs_source(paths: list[Path]) -> dict:
    """What the JSON says of the JPEGs a benchmark read: their folder, count and mean size."""
    return {"source": str(JPEGS), "source_files": len(paths),
            "source_mean_kb": round(sum(p.stat().st_size for p in paths) / len(paths) / 1024, 1)}


def interleaved(runs: dict, repeats: int) -> dict[str, list]:
    """Call each of `runs` (name -> function returning a dict with "seconds") in turn, A B A B...,
    `repeats` rounds; the returned dicts per name, in call order."""
    results = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            results[name].append(run())
    return results


# a competitor: a Python busy loop that ends itself once its parent (whose pid it is given: the
# parent may be gone before the loop starts) is, so that a benchmark killed before its cleanup ran
# leaves no loop spinning (the next "quiet" run would be loaded)
BUSY_LOOP = ("import os, sys\n"
             "while os.getppid() == int(sys.argv[1]):\n    for _ in range(1_000_000): pass\n")


@contextmanager
def competing(count: int):
    """`count` CPU-bound processes (BUSY_LOOP) running until the block ends: the loaded
    condition, two of them on a 2-core machine."""
    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(os.getpid())]) for _ in range(count)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def add_competitors_option(parser) -> None:
    parser.add_argument("--competitors", type=int, default=0,
                        help="CPU-bound processes running beside every timed side (the loaded condition: 2)")


def summary(results: list[dict], work: float, unit: str) -> dict:
    """Median and min seconds of the runs, the rates (`work` per second), and any other keys'
    maxima (peak memory)."""
    seconds = [r["seconds"] for r in results]
    out = {
        "runs_s": [round(s, 3) for s in seconds],
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        f"median_{unit}_per_s": round(work / statistics.median(seconds), 1),
        f"best_{unit}_per_s": round(work / min(seconds), 1),
    }
    for key in results[0]:
        if key != "seconds":
            out[f"max_{key}"] = max(r[key] for r in results)
    return out


def ratio(ours: dict, peer: dict) -> dict:
    """Peer seconds over ours (> 1: we are faster), of the medians and of the minima."""
    return {"median": round(peer["median_s"] / ours["median_s"], 2), "min": round(peer["min_s"] / ours["min_s"], 2)}


def run_command(command, cwd=ROOT, env=None, output=False) -> dict:
    """Run one command; {"seconds", "peak_tree_rss_mb" (the most its process tree held at once,
    sampled every 20 ms), "peak_process_rss_mb" (its largest single process)}, with `output` also
    "output" (its stdout and stderr). Exits on failure."""
    start = time.perf_counter()
    process = psutil.Popen([str(c) for c in command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    peaks = {"tree": 0, "process": 0}

    def sample():
        while process.poll() is None:
            try:
                tree = [process, *process.children(recursive=True)]
                rss = [p.memory_info().rss for p in tree]
            except psutil.Error:
                continue
            peaks["tree"] = max(peaks["tree"], sum(rss))
            peaks["process"] = max(peaks["process"], max(rss))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, command))}\n{stdout.decode()}\n{stderr.decode()}")
    done = {"seconds": seconds, "peak_tree_rss_mb": round(peaks["tree"] / 2**20, 1),
            "peak_process_rss_mb": round(peaks["process"] / 2**20, 1)}
    if output:
        done["output"] = stdout.decode(errors="replace") + stderr.decode(errors="replace")
    return done


def context() -> dict:
    """The machine and its load when a benchmark starts."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_result(name: str, result: dict, out=None) -> None:
    """Add the end-of-run load average, write the JSON atomically, print it."""
    from imgdag.atomic import atomic_open

    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = Path(out) if out else OUT / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
