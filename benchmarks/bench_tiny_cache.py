"""Tiny ImageNet's cache job from the raw layout against a bare decode of the same files with as
many processes. Writes JSON.

The raw tree is a real Tiny ImageNet folder as it is (`--raw`: the whole dataset, 120,000 files,
is data this benchmark was never tuned on), or one generated in a temporary folder, in the real
layout, from the real samples (../shared/realdata/tiny-imagenet-200: 1,250 JPEGs, 64x64; or
IMGDAG_BENCH_TINY's, timing.py): each image a random crop (48 to 64 px) of one of them scaled
back to 64x64 and encoded again (grey ones stay grey); --classes WNIDs (the first of the real
wnids.txt) with --train-per-class train images and their boxes, --val val images with
val_annotations.txt, --test test images, and the real words.txt. The benchmarked image set is one
split's index table (--split, written as scripts/write_tiny_index.py writes it): by default the
job lists a tree 12 times bigger than what it decodes, as the real val and test jobs do (10,000
images of 120,000 files).
Measured interleaved, A B A B ... (--repeats rounds), median and min, the load average at the
start and at the end:
- cache_job: scripts/tiny_to_array.py run in this process (imports already loaded) with --workers
  processes: it lists the raw folder, decodes the table's images into the cache (that decode is
  the check, checks.bad_images skip) and writes the table of the cached rows;
- bare_decode: a pool of --workers processes (started inside the timing, as the job's is) doing
  Pillow open + convert("RGB") + numpy of each of the same files, nothing written;
- dirtree_listing, os_walk: the raw folder listed by imgdag's DirTree, and walked by os.walk alone.
`--baseline CHECKOUT` adds both checkouts' index job and cache job run from the command line as
their rules ran them (start-up included; e.g. the main branch before a change), and checks that
their caches are byte-identical.
Writes benchmarks/out/tiny_cache.json. `--quick`: a small tree, one repeat (a smoke test, not timed).
"""
import contextlib
import filecmp
import io
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars from the jobs run in this process

from timing import (ROOT, TINY, context, interleaved, ratio, run_command, summary,  # first: this tree's imgdag
                    write_result)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from imgdag.arraycache import cache_paths  # noqa: E402
from imgdag.cli import parser  # noqa: E402
from imgdag.codec import decode_stored, encode_jpeg, resize  # noqa: E402
from imgdag.formats.index_table import read_tiny_index, write_tiny_index  # noqa: E402
from imgdag.layouts.tiny_imagenet import read_tiny_imagenet  # noqa: E402
from imgdag.layouts.tree import DirTree  # noqa: E402

SIZE = 64


def real_tiny_images() -> list[np.ndarray]:
    """The real Tiny ImageNet sample's images, as stored (1 or 3 channels)."""
    paths = sorted(TINY.glob("*/**/*.JPEG"))
    if not paths:
        sys.exit(f"error: {TINY}: no Tiny ImageNet JPEGs (real data absent; set IMGDAG_REALDATA or IMGDAG_BENCH_TINY)")
    return [decode_stored(p.read_bytes(), p) for p in paths]


def make_raw_tree(root: Path, classes: int, train_per_class: int, val: int, test: int) -> Path:
    """A Tiny ImageNet folder under `root` (see the module docstring); returns its path."""
    sources, rng = real_tiny_images(), np.random.default_rng(0)
    wnids = (TINY / "wnids.txt").read_text().split()[:classes]
    top = root / "tiny-imagenet-200"

    def write_image(path: Path) -> str:
        """A new JPEG at `path`; its box as `x0<TAB>y0<TAB>x1<TAB>y1`."""
        source = sources[int(rng.integers(len(sources)))]
        side = int(rng.integers(48, SIZE + 1))
        y, x = rng.integers(0, SIZE - side + 1, 2)
        pixels = resize(source[y:y + side, x:x + side], SIZE, SIZE)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_jpeg(pixels, int(rng.integers(75, 96))))
        x0, y0 = rng.integers(0, SIZE // 2, 2)
        x1, y1 = rng.integers(SIZE // 2, SIZE, 2)
        return f"{x0}\t{y0}\t{x1}\t{y1}"

    top.mkdir(parents=True)
    (top / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    (top / "words.txt").write_bytes((TINY / "words.txt").read_bytes())
    for wnid in wnids:
        boxes = [f"{wnid}_{i}.JPEG\t{write_image(top / f'train/{wnid}/images/{wnid}_{i}.JPEG')}\n"
                 for i in range(train_per_class)]
        (top / f"train/{wnid}/{wnid}_boxes.txt").write_text("".join(boxes))
    annotations = [f"val_{i}.JPEG\t{wnids[i % len(wnids)]}\t{write_image(top / f'val/images/val_{i}.JPEG')}\n"
                   for i in range(val)]
    (top / "val/val_annotations.txt").write_text("".join(annotations))
    for i in range(test):
        write_image(top / f"test/images/test_{i}.JPEG")
    return root


def cache_job(raw: Path, table: Path, stem: Path, workers: int) -> dict:
    """scripts/tiny_to_array.py in this process, as its rule runs it."""
    argv = sys.argv
    sys.argv = ["tiny_to_array.py", "--raw", str(raw), "--index", str(table), "--out", str(stem),
                "--bad-images", "skip", "--workers", str(workers)]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            runpy.run_path(str(ROOT / "scripts" / "tiny_to_array.py"), run_name="__main__")
            return {"seconds": time.perf_counter() - start}
    finally:
        sys.argv = argv


def _pillow_rgb(path: str) -> int:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).shape[0]


def bare_decode(paths: list[str], workers: int) -> dict:
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        rows = sum(pool.imap_unordered(_pillow_rgb, paths, chunksize=64))
    assert rows == SIZE * len(paths)
    return {"seconds": time.perf_counter() - start}


def timed(function) -> dict:
    start = time.perf_counter()
    function()
    return {"seconds": time.perf_counter() - start}


def count_walked(raw: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(raw))


def takes(script: Path, option: str, env: dict) -> bool:
    """Whether `script` has the command-line option `option` (its --help says)."""
    done = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, env=env, check=True)
    return option in done.stdout


def cli_runs(raw: Path, table: Path, work: Path, checkout: Path, name: str, workers: int) -> dict:
    """A checkout's index and cache jobs from the command line, as its rules run them."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "TQDM_DISABLE": "1"}
    index = checkout / "scripts" / "write_tiny_index.py"
    index_flags = ["--workers", workers] if takes(index, "--workers", env) else []  # it checked the images
    return {
        f"index_job_cli_{name}": lambda: run_command(
            [sys.executable, index, "--raw", raw, "--out", work / f"index-{name}", *index_flags], env=env),
        f"cache_job_cli_{name}": lambda: run_command(
            [sys.executable, checkout / "scripts" / "tiny_to_array.py", "--raw", raw, "--index", table,
             "--out", work / f"cli-{name}/cache", "--workers", workers], env=env),
    }


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--raw", help="a Tiny ImageNet folder to cache from as it is (default: a generated tree, "
                                 "--classes, --train-per-class, --val, --test)")
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--train-per-class", type=int, default=1000)
    p.add_argument("--val", type=int, default=2000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--split", choices=["train", "val", "test"], default="val", help="the benchmarked split")
    p.add_argument("--workers", type=int, default=2, help="decoding processes, both sides")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--baseline", help="another checkout whose index and cache jobs to time from the command line")
    p.add_argument("--quick", action="store_true", help="smoke test: a tree of 150 images, one repeat")
    p.add_argument("--out", help="JSON output (default benchmarks/out/tiny_cache.json)")
    args = p.parse_args()
    if args.quick:
        args.classes, args.train_per_class, args.val, args.test, args.repeats = 2, 50, 40, 10, 1
    with tempfile.TemporaryDirectory(prefix="bench-tiny-cache-") as tmp:
        work = Path(tmp)
        raw = Path(args.raw).resolve() if args.raw else make_raw_tree(
            work / "raw", args.classes, args.train_per_class, args.val, args.test)
        reading = read_tiny_imagenet(raw, empty_classes="keep")  # the shared sample: 2 classes of 200 have images
        for split in ("train", "val", "test"):
            write_tiny_index(work / f"index/{split}.csv", reading.records(split))
        table = work / f"index/{args.split}.csv"
        paths = [str(raw / r.path) for r in read_tiny_index(table)]
        files = count_walked(raw)
        result = {**context(), "quick": args.quick, "source": str(raw) if args.raw else f"generated from {TINY}",
                  "split": args.split, "images": len(paths), "files_in_raw_tree": files, "workers": args.workers,
                  "repeats": args.repeats, "baseline": args.baseline}
        runs = {
            "cache_job": lambda: cache_job(raw, table, work / "cache", args.workers),
            "bare_decode": lambda: bare_decode(paths, args.workers),
            "dirtree_listing": lambda: timed(lambda: DirTree(raw)),
            "os_walk": lambda: timed(lambda: count_walked(raw)),
        }
        if args.baseline:
            runs.update(cli_runs(raw, table, work, ROOT, "ours", args.workers))
            runs.update(cli_runs(raw, table, work, Path(args.baseline).resolve(), "baseline", args.workers))
        measured = interleaved(runs, args.repeats)
        listing = ("dirtree_listing", "os_walk", "index_job_cli_ours", "index_job_cli_baseline")  # the whole tree
        sides = {name: summary(r, files, "file") if name in listing else summary(r, len(paths), "img")
                 for name, r in measured.items()}
        result["sides"] = sides
        result["ratios"] = {
            "cache_job_vs_bare_decode": ratio(sides["cache_job"], sides["bare_decode"]),
            # a quick run's tree lists in under a millisecond: no ratio of rounded zeros
            "dirtree_vs_os_walk": ratio(sides["dirtree_listing"], sides["os_walk"])
            if sides["dirtree_listing"]["min_s"] > 0 else None,
        }
        if args.baseline:
            result["ratios"]["cache_job_cli_baseline_s_over_ours"] = ratio(sides["cache_job_cli_ours"],
                                                                           sides["cache_job_cli_baseline"])
            result["ratios"]["index_job_cli_baseline_s_over_ours"] = ratio(sides["index_job_cli_ours"],
                                                                           sides["index_job_cli_baseline"])
            result["caches_identical_to_baseline"] = all(
                filecmp.cmp(ours, base, shallow=False)
                for ours, base in zip(cache_paths(work / "cli-ours/cache"), cache_paths(work / "cli-baseline/cache")))
    write_result("tiny_cache", result, args.out)


if __name__ == "__main__":
    main()
