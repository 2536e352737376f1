"""Cost grows linearly: a user's conversion steps on 1k, 10k and 100k images, time per image and
peak memory per step, each size against the smallest.

For each size N a class-folder tree is generated in a temporary folder: `train/<wnid>/*.JPEG`
(N images) and `validation/<wnid>/*.JPEG` (N/20), --classes WNIDs of the real ImageNet sample
(../shared/realdata/imagenet-sample, one JPEG per class). Each image is a crop of its class's
real JPEG (60-100 % of each side, at a random offset), resized so that its shorter side is
224-320 px and encoded again at quality 75-95 (grey ones stay grey); drawn from (seed, split,
index), so a size's images are the same in every run and the sizes share one distribution.
The steps, run as the imagenet-8 recipe's rules run them (rules/imagenet8.smk), each from the
command line in a fresh process, start-up included, with --workers processes:
- cntk_maps: scripts/write_cntk_maps.py (lists the tree, checks that every image decodes, writes
  train_map.txt, val_map.txt, classes.txt); its images are train + validation;
- lst_from_map: scripts/make_lst.py PREFIX --from-map train_map.txt (the recipe's .lst);
- lst_listing: scripts/make_lst.py PREFIX train --recursive (im2rec --list's walk and shuffle);
- rec_pass_through: scripts/make_rec.py --pass-through --images-checked (the recipe's packing);
- rec_resize_256: scripts/make_rec.py --resize 256 --quality 95 (full-size ImageNet's packing);
- loader_epoch: one training epoch over the resize-256 .rec in a fresh interpreter:
  imgdag.imagedata.ImageBatches over RecordImages, random-resized crop 224 + mirror, batch 64,
  --workers decoding threads, one torch thread (as bench_rec_loader.py); loader_epoch_in_process
  is the same run's epoch alone (its torch import left out, the .rec opened).
Repeats are interleaved: each round runs every size's steps, smallest size first; sizes above
10,000 images run --large-repeats rounds (the first ones). Every command starts with no dirty
pages (an untimed sync) and reads a tree in the page cache (generated just before). Per step and
size: median and min seconds, ms per image, CPU ms per image (the step's processes, user +
system: what more cores share), the most 1-minute load seen, peak memory: the largest
single process of the step (the kernel's figure, wait4's ru_maxrss) and the step's whole process
tree (summed, sampled every 20 ms). Then per step: ms per image at each size over the smallest
size's (goal <= 1.15, of the medians and of the minima), the marginal ms per image between
successive sizes (the start-up left out), and the peak memory at the largest size over the
smallest's, with the largest process's growth in KB per image (what a bigger dataset adds).
Writes benchmarks/out/scale.json. `--quick`: 100 and 200 images, one repeat (a smoke test, not
timed).
"""
import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import ROOT, context, run_command, sample_jpegs, summary, write_result

from imgdag.codec import decode_stored, encode_jpeg, resize

SCRIPTS = ROOT / "scripts"
VALIDATION_SHARE = 20  # one validation image per 20 train images
LARGE = 10_000  # sizes above this run --large-repeats rounds
STEPS = ["cntk_maps", "lst_from_map", "lst_listing", "rec_pass_through", "rec_resize_256", "loader_epoch"]

LOADER_EPOCH = r"""
import json, sys, time
import imgdag.threads  # before torch, as train.py
import torch
from imgdag.imagedata import ImageBatches, RecordImages
rec, batch, workers, report = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(1)
start = time.perf_counter()
batches = ImageBatches(RecordImages(rec), batch, torch.device("cpu"), [0.485, 0.456, 0.406],
                       [0.229, 0.224, 0.225], 224, train=True, mirror=True, num_workers=workers)
images = sum(len(x) for x, _ in batches.epoch(0))
seconds = time.perf_counter() - start
del batches
with open(report, "w") as f:
    json.dump({"images": images, "epoch_seconds": seconds}, f)
"""

# A step's peak memory, as the kernel counts it: ru_maxrss of a child also holds the memory of
# the process it was spawned from (the mm it shared until exec), so the steps are spawned by
# this small interpreter (stdlib only, a few MB), never by the benchmark process (the decoded
# sources); it writes {"seconds", "max_rss_kb", "cpu_seconds"} of the command to its first
# argument (CPU: the command's and its waited-for children's, user + system).
PEAK_RSS = r"""
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
_, status, usage = os.wait4(os.posix_spawnp(command[0], command, os.environ), 0)
seconds = time.perf_counter() - start
with open(report, "w") as f:
    json.dump({"seconds": seconds, "max_rss_kb": usage.ru_maxrss,
               "cpu_seconds": usage.ru_utime + usage.ru_stime}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""

_sources: list[np.ndarray] = []  # the real JPEGs, decoded once before the generating pool forks


def _write_image(job: tuple[Path, int, int]) -> int:
    """One generated JPEG (see the module docstring); its size in bytes."""
    path, source, key = job
    rng = np.random.default_rng(key)
    pixels = _sources[source]
    height, width = pixels.shape[:2]
    crop_h, crop_w = (int(side * rng.uniform(0.6, 1.0)) for side in (height, width))
    top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    shorter = int(rng.integers(224, 321))
    scale = shorter / min(crop_h, crop_w)
    image = resize(pixels[top:top + crop_h, left:left + crop_w], round(crop_h * scale), round(crop_w * scale))
    data = encode_jpeg(image, int(rng.integers(75, 96)))
    path.write_bytes(data)
    return len(data)


def make_tree(raw: Path, images: int, classes: int, seed: int, workers: int) -> dict:
    """train/ and validation/ class folders under `raw` (see the module docstring); their size."""
    files = sample_jpegs()[:classes]
    if len(files) < classes:
        sys.exit(f"--classes {classes}: the real sample has {len(files)} classes")
    if not _sources:
        _sources.extend(decode_stored(f.read_bytes(), f) for f in files)
    wnids = [f.name.split("_")[0] for f in files]
    jobs = []
    for split_key, (split, count) in enumerate((("train", images), ("validation", images // VALIDATION_SHARE))):
        for wnid in wnids:
            (raw / split / wnid).mkdir(parents=True)
        for i in range(count):
            label = i % classes
            jobs.append((raw / split / wnids[label] / f"{wnids[label]}_{i}.JPEG", label, (seed, split_key, i)))
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        sizes = pool.map(_write_image, jobs, chunksize=64)
    return {"train_images": images, "validation_images": images // VALIDATION_SHARE,
            "tree_mb": round(sum(sizes) / 2**20, 1), "mean_image_kb": round(sum(sizes) / len(sizes) / 1024, 1),
            "generate_s": round(time.perf_counter() - start, 1)}


def step_commands(raw: Path, out: Path, tree: dict, workers: int, batch: int) -> dict:
    """Step -> (command, its outputs, images it handles) for the generated
    `tree` (make_tree's figures) at `raw`, writing under `out`."""
    py, w = sys.executable, str(workers)
    train = tree["train_images"]
    images = train + tree["validation_images"]
    rec_flags = ["--num-workers", w, "--bad-images", "skip"]
    return {
        "cntk_maps": ([py, SCRIPTS / "write_cntk_maps.py", "--raw", raw, "--out", out / "maps", "--workers", w,
                       "--bad-images", "skip"], [out / "maps"], images),
        "lst_from_map": ([py, SCRIPTS / "make_lst.py", out / "train", "--from-map", out / "maps" / "train_map.txt"],
                         [out / "train.lst"], train),
        "lst_listing": ([py, SCRIPTS / "make_lst.py", out / "listing", raw / "train", "--recursive"],
                        [out / "listing.lst"], train),
        "rec_pass_through": ([py, SCRIPTS / "make_rec.py", out / "train.lst", raw, "--rec", out / "full.rec",
                              *rec_flags, "--pass-through", "--images-checked"],
                             [out / "full.rec", out / "full.idx"], train),
        "rec_resize_256": ([py, SCRIPTS / "make_rec.py", out / "train.lst", raw, "--rec", out / "r256.rec",
                            *rec_flags, "--resize", "256", "--quality", "95"], [out / "r256.rec", out / "r256.idx"],
                           train),
        "loader_epoch": ([py, "-c", LOADER_EPOCH, out / "r256.rec", str(batch), w, out / "epoch.json"],
                         [out / "epoch.json"], train),
    }


def run_step(command: list, env: dict, report: Path) -> dict:
    """Run one command (after an untimed sync) under the PEAK_RSS wrapper: {"seconds" (the
    command's own), "cpu_seconds" (its processes' CPU time), "process_rss_mb" (its largest process at its peak, the kernel's figure),
    "tree_rss_mb" (the most the tree held at once, summed, the wrapper's few MB included,
    sampled every 20 ms), "load_1min" (the most seen at its start and end)}."""
    os.sync()
    load = os.getloadavg()[0]
    r = run_command([sys.executable, "-I", "-S", "-c", PEAK_RSS, report, *command], env=env)
    peak = json.loads(report.read_text())
    return {"seconds": peak["seconds"], "cpu_seconds": round(peak["cpu_seconds"], 3),
            "process_rss_mb": round(peak["max_rss_kb"] / 1024, 1),
            "tree_rss_mb": r["peak_tree_rss_mb"], "load_1min": round(max(load, os.getloadavg()[0]), 2)}


def remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def run_round(size: int, commands: dict, env: dict, work: Path, runs: dict) -> None:
    """Every step of one size once, in order, appending to runs[size][step]; the round's
    outputs removed first (a rewritten .rec would sit beside the old one until renamed)."""
    for _, outputs, _ in commands.values():
        remove(outputs)
    for step, (command, outputs, _) in commands.items():
        runs[size][step].append(run_step(command, env, work / "peak.json"))
        if step == "loader_epoch":
            epoch = json.loads(outputs[0].read_text())
            assert epoch["images"] == commands[step][2], (epoch, size)
            runs[size]["loader_epoch_in_process"].append({"seconds": epoch["epoch_seconds"]})
        if step == "rec_pass_through":  # only the resize-256 .rec is read later: free the disk
            remove(outputs)


def per_image(side: dict, images: int) -> dict:
    return {"ms_per_img_median": round(1000 * side["median_s"] / images, 3),
            "ms_per_img_min": round(1000 * side["min_s"] / images, 3)}


def scaling(sizes: dict) -> dict:
    """Per step: ms per image at each size over the smallest size's, the marginal ms per image
    between successive sizes, and the largest size's peak memory over the smallest's (and the
    largest process's growth per image, in KB, between them)."""
    order = sorted(sizes, key=int)
    first, last = sizes[order[0]]["steps"], sizes[order[-1]]["steps"]
    out = {}
    for step in first:
        def ms(size, key="median"):
            return sizes[size]["steps"][step][f"ms_per_img_{key}"]

        def seconds(size):
            s = sizes[size]["steps"][step]
            return s["median_s"], s["images"]

        entry = {"ms_per_img_ratio_vs_smallest": {
            size: {"median": round(ms(size) / ms(order[0]), 3), "min": round(ms(size, "min") / ms(order[0], "min"), 3)}
            for size in order[1:]}}
        marginal = {}
        for a, b in zip(order, order[1:]):
            (sa, na), (sb, nb) = seconds(a), seconds(b)
            marginal[f"{a}->{b}"] = round(1000 * (sb - sa) / (nb - na), 3)
        entry["marginal_ms_per_img"] = marginal
        if "max_process_rss_mb" in first[step]:
            entry["peak_rss_ratio_largest_vs_smallest"] = {
                key: round(last[step][f"max_{key}_rss_mb"] / first[step][f"max_{key}_rss_mb"], 2)
                for key in ("process", "tree")}
            grown = last[step]["max_process_rss_mb"] - first[step]["max_process_rss_mb"]
            entry["process_rss_kb_per_img_marginal"] = round(
                1024 * grown / (last[step]["images"] - first[step]["images"]), 3)
        out[step] = entry
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000], help="train images per tree")
    p.add_argument("--classes", type=int, default=100, help="class folders (at most the real sample's 100)")
    p.add_argument("--workers", type=int, default=2, help="the steps' worker processes (their rules' threads)")
    p.add_argument("--batch", type=int, default=64, help="the loader epoch's batch")
    p.add_argument("--repeats", type=int, default=3, help="rounds at sizes up to 10,000 images")
    p.add_argument("--large-repeats", type=int, default=1, help="rounds at sizes above 10,000 images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke test: 100 and 200 images, 10 classes, one repeat")
    p.add_argument("--out", help="JSON output (default benchmarks/out/scale.json)")
    args = p.parse_args()
    if args.quick:
        args.sizes, args.classes, args.repeats, args.large_repeats = [100, 200], 10, 1, 1
    sizes = sorted(set(args.sizes))
    repeats = {n: args.large_repeats if n > LARGE else args.repeats for n in sizes}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}  # the steps run this tree's imgdag
    result = {**context(), "quick": args.quick, "workers": args.workers, "classes": args.classes,
              "batch": args.batch, "repeats": {str(n): r for n, r in repeats.items()}, "seed": args.seed}
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        trees, commands = {}, {}
        for n in sizes:
            trees[n] = make_tree(work / str(n) / "raw", n, args.classes, args.seed, args.workers)
            commands[n] = step_commands(work / str(n) / "raw", work / str(n), trees[n], args.workers, args.batch)
            print(f"{n} images: {trees[n]}", file=sys.stderr)
        runs = {n: {step: [] for step in [*STEPS, "loader_epoch_in_process"]} for n in sizes}
        for round_ in range(max(repeats.values())):
            for n in sizes:
                if round_ < repeats[n]:
                    start = time.perf_counter()
                    run_round(n, commands[n], env, work, runs)
                    print(f"round {round_ + 1}, {n} images: {time.perf_counter() - start:.0f} s, "
                          f"load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        result["sizes"] = {}
        for n in sizes:
            entry = {**trees[n], "r256_rec_mb": round((work / str(n) / "r256.rec").stat().st_size / 2**20, 1),
                     "steps": {}}
            for step, r in runs[n].items():
                images = commands[n]["loader_epoch" if step == "loader_epoch_in_process" else step][2]
                side = summary(r, images, "img")
                entry["steps"][step] = {"images": images, **side, **per_image(side, images)}
                if "cpu_seconds" in r[0]:  # CPU per image: what a core count divides (the projection)
                    cpu = sorted(x["cpu_seconds"] for x in r)
                    entry["steps"][step]["cpu_ms_per_img_median"] = round(1000 * cpu[len(cpu) // 2] / images, 3)
            entry["round_seconds_median"] = round(sum(entry["steps"][s]["median_s"] for s in STEPS), 1)
            result["sizes"][str(n)] = entry
        result["scaling"] = scaling(result["sizes"])
    finally:
        shutil.rmtree(work)
    write_result("scale", result, args.out)


if __name__ == "__main__":
    main()
