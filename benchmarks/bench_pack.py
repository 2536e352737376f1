"""Packing speed: our scripts/make_rec.py against MXNet 1.9.1's tools/im2rec.py.

Generates N JPEGs (size x size, 10 class folders), lists them once, then packs the same .lst
with each tool from the command line, same worker count, resize and quality. One run each,
whole (start-up and imports included), and the start-up alone (the same command on an empty
.lst), so the rate after start-up is shown too. Writes benchmarks/out/pack.json and prints
it. im2rec runs in .venv-mxnet (bash scripts/setup_mxnet_env.sh); without it only ours is
measured.
"""
import argparse
import filecmp
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from imgdag.atomic import atomic_open
from imgdag.formats.lst import list_image_folder, write_lst
from imgdag.formats.recordio import RecordReader

ROOT = Path(__file__).resolve().parents[1]

MXNET_PYTHON = ROOT / ".venv-mxnet" / "bin" / "python"


def make_images(root: Path, count: int, size: int) -> None:
    """`count` photo-like JPEGs (smooth gradients plus noise), quality 90, in 10 class folders."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    for i in tqdm(range(count), desc="images", unit="img"):
        a, b, c = rng.uniform(0.5, 4, 3)
        base = np.stack([np.sin(a * x + b * y + c), np.cos(b * x - a * y), np.sin(c * x * y)], axis=-1)
        pixels = np.clip(127 + 100 * base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)


def timed(command, cwd) -> float:
    """Wall-clock seconds of one command run (exits with its output if it fails)."""
    start = time.perf_counter()
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}")
    return seconds


def measured(tool, images, seconds, start_up, rec) -> dict:
    """One tool's figures: whole run, start-up (the same command on an empty .lst), the rest."""
    return {
        f"{tool}_seconds": round(seconds, 2),
        f"{tool}_images_per_s": round(images / seconds, 1),
        f"{tool}_start_up_seconds": round(start_up, 2),
        f"{tool}_images_per_s_after_start_up": round(images / (seconds - start_up), 1),
        f"{tool}_records": len(RecordReader(rec)),
        f"{tool}_rec_bytes": rec.stat().st_size,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--images", type=int, default=3000)
    p.add_argument("--size", type=int, default=256, help="generated image side, pixels")
    p.add_argument("--resize", type=int, default=128, help="shorter side after packing (0: keep)")
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--workers", type=int, default=2, help="our --num-workers and im2rec's --num-thread")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "pack.json"))
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pack-"))
    try:
        make_images(work / "images", args.images, args.size)
        write_lst(work / "images.lst", list_image_folder(work / "images", recursive=True))
        write_lst(work / "empty.lst", [])
        options = ["--resize", args.resize, "--quality", args.quality, "--num-workers", args.workers]

        def ours(lst):
            rec = work / "ours" / f"{lst.stem}.rec"
            seconds = timed(
                [sys.executable, ROOT / "scripts" / "make_rec.py", lst, work / "images", "--rec", rec, *options], ROOT
            )
            return seconds, rec

        start_up, _ = ours(work / "empty.lst")
        seconds, our_rec = ours(work / "images.lst")
        result = {
            "images": args.images,
            "image_size": args.size,
            "resize": args.resize,
            "quality": args.quality,
            "workers": args.workers,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            **measured("ours", args.images, seconds, start_up, our_rec),
        }
        if MXNET_PYTHON.exists():
            tools = (
                subprocess.run(
                    [
                        MXNET_PYTHON,
                        "-c",
                        "import mxnet, os; print(os.path.join(os.path.dirname(mxnet.__file__), 'tools'))",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            options[-2] = "--num-thread"

            def im2rec(lst):
                folder = work / f"mx-{lst.stem}"
                folder.mkdir()
                shutil.copy(lst, folder / lst.name)
                seconds = timed(
                    [MXNET_PYTHON, Path(tools) / "im2rec.py", folder / lst.stem, work / "images", *options], work
                )
                return seconds, folder / f"{lst.stem}.rec"

            start_up, _ = im2rec(work / "empty.lst")
            seconds, their_rec = im2rec(work / "images.lst")
            result.update(measured("im2rec", args.images, seconds, start_up, their_rec))
            result["rec_files_identical"] = filecmp.cmp(their_rec, our_rec, shallow=False)
            result["speed_ratio_ours_over_im2rec"] = round(result["im2rec_seconds"] / result["ours_seconds"], 2)
            result["speed_ratio_after_start_up"] = round(
                result["ours_images_per_s_after_start_up"] / result["im2rec_images_per_s_after_start_up"], 2
            )
        else:
            result["im2rec"] = f"not measured: {MXNET_PYTHON} is absent (bash scripts/setup_mxnet_env.sh)"
    finally:
        shutil.rmtree(work)

    with atomic_open(args.out) as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
