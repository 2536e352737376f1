"""Small images (Tiny ImageNet 64 px JPEGs): imgdag's decode-once cache and whole-batch
augmentation against torchvision ImageFolder + DataLoader, side by side. Writes JSON.

The real Tiny train JPEGs (../shared/realdata, 1,000 images; or IMGDAG_BENCH_TINY's train/,
timing.py) are replicated (hard links, or copies across file systems) to --images files in
class folders. Measured, each side interleaved with the others (A B C A B C ...), median and min
of --repeats runs, the load average at the start and the end:
- data path alone (no model), one epoch of normalised float batches of 64, crop 56-64 px scaled
  back to 64 + mirror: `ArrayBatches` + `random_crop_flip` (integer indexing on the uint8
  pixels) | the same with the affine warp (`random_crop_rotate`) | ImageFolder + DataLoader with
  RandomResizedCrop (the same crop sizes, bilinear: torchvision's usual choice) +
  RandomHorizontalFlip + ToTensor + Normalize and --workers loader processes;
- the decode-once cache build (`write_files_cache`, --workers processes) in img/s, next to
  Pillow decoding the same files in one process;
- end to end: --train-batches SGD steps of ResNet-18 (64 px) on each data path.
`--baseline CHECKOUT` adds the data path of this tree and of another checkout (e.g. the main
branch before a change), each timed by benchmarks/crop_epoch.py in a process of its own (its
start-up not timed), and checks that their batches are identical (one sha256 of an epoch).
Writes benchmarks/out/small_images.json. `--quick`: 640 images, one repeat (not timed).
"""
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import ROOT, TINY, context, interleaved, ratio, summary, write_result  # first: this tree's imgdag

import imgdag.threads  # noqa: E402,F401  before torch: idle OpenMP threads sleep

import torch  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

from imgdag.arraycache import read_array_cache
from imgdag.arraycache_writer import write_files_cache  # noqa: E402
from imgdag.augment import batch_augment  # noqa: E402
from imgdag.batches import ArrayBatches  # noqa: E402
from imgdag.cli import parser  # noqa: E402
from imgdag.codec import decode_rgb  # noqa: E402
from imgdag.layouts.tree import open_tree  # noqa: E402
from imgdag.models import build_model  # noqa: E402
from imgdag.threads import use_threads  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CROP_MIN, CROP_MAX, BATCH = 56, 64, 64


def replicate(folder: Path, count: int) -> tuple[list[str], list[int]]:
    """`count` class-folder JPEGs (links or copies of the real ones, round robin); paths, labels."""
    sources = sorted(TINY.glob("train/*/images/*.JPEG"))
    if not sources:
        sys.exit(f"error: {TINY}: no Tiny ImageNet train JPEGs (real data absent)")
    classes = sorted({p.parts[-3] for p in sources})
    paths, labels = [], []
    for i in range(count):
        source = sources[i % len(sources)]
        name = f"{source.parts[-3]}/{source.stem}_{i // len(sources)}.JPEG"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, folder / name)
        except OSError as e:
            if e.errno != errno.EXDEV:  # only another file system is copied to
                raise
            shutil.copyfile(source, folder / name)
        paths.append(name)
        labels.append(classes.index(source.parts[-3]))
    return paths, labels


def image_folder(folder: Path, workers: int, seed: int):
    transform = transforms.Compose([
        transforms.RandomResizedCrop(64, scale=((CROP_MIN / 64) ** 2, 1.0), ratio=(1.0, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    return torch.utils.data.DataLoader(
        datasets.ImageFolder(folder, transform=transform), batch_size=BATCH, shuffle=True,
        num_workers=workers, generator=torch.Generator().manual_seed(seed))


def array_batches(stem: Path, rotate: bool, seed: int):
    images, labels = read_array_cache(stem)
    augment = batch_augment(CROP_MIN, CROP_MAX, 1.0 if rotate else 0.0, mirror=True)
    return ArrayBatches(images, labels, BATCH, torch.device("cpu"), MEAN, STD, shuffle=True,
                        seed=seed, **augment).epoch(0)


def timed(batches, images: int, limit=None, model=None) -> dict:
    """{"seconds"} to draw `limit` batches (all when None), with SGD steps if model; checks
    that `images` images came."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01) if model else None
    seen, start = 0, time.perf_counter()
    for step, (x, y) in enumerate(batches):
        if limit is not None and step == limit:
            break
        if model is not None:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        seen += len(y)
    seconds = time.perf_counter() - start
    assert seen == images, (seen, images)
    return {"seconds": seconds}


def pillow_decode(folder: Path, paths: list[str]) -> dict:
    start = time.perf_counter()
    for name in paths:
        decode_rgb((folder / name).read_bytes(), name)
    return {"seconds": time.perf_counter() - start}


def crop_epoch_in_child(checkout: Path, stem: Path, threads: int, images: int, digests: set) -> dict:
    """{"seconds"} of one data-path epoch timed by benchmarks/crop_epoch.py with `checkout`'s
    imgdag; the digest of its batches goes into `digests`."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "crop_epoch.py"), "--cache", str(stem), "--threads", str(threads),
         "--batch", str(BATCH), "--crop", str(CROP_MIN), str(CROP_MAX), "--mean", *map(str, MEAN),
         "--std", *map(str, STD)],
        env={**os.environ, "PYTHONPATH": str(checkout)}, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        sys.exit(f"error: crop_epoch.py with {checkout}'s imgdag failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["images"] == images, (out["images"], images)
    digests.add(out["digest"])
    return {"seconds": out["seconds"]}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--workers", type=int, default=2, help="loader / decoding processes")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-batches", type=int, default=10,
                   help="ResNet-18 steps per end-to-end run")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 640 images, 1 repeat, 2 steps (figures not meaningful)")
    p.add_argument("--baseline", help="another checkout whose data path to time beside this tree's, each in a "
                                      "process of its own (benchmarks/crop_epoch.py)")
    p.add_argument("--out", help="JSON output (default benchmarks/out/small_images.json)")
    args = p.parse_args()
    if args.quick:
        args.images, args.repeats, args.train_batches = 640, 1, 2
    use_threads(args.threads)
    result = {**context(), "quick": args.quick, "images": args.images, "source": str(TINY / "train"),
              "workers": args.workers, "threads": args.threads, "repeats": args.repeats,
              "batch_size": BATCH, "augment": f"crop {CROP_MIN}-{CROP_MAX} px + mirror", "baseline": args.baseline}
    steps = min(args.train_batches, -(-args.images // BATCH))
    stepped = min(steps * BATCH, args.images)
    with tempfile.TemporaryDirectory() as tmp:
        folder, stem = Path(tmp) / "folders", Path(tmp) / "cache"
        paths, labels = replicate(folder, args.images)
        torch.manual_seed(0)
        model = build_model("resnet18_64px", len(set(labels)), stem="imagenet")

        def cache_build():
            start = time.perf_counter()
            with open_tree(folder) as tree:
                write_files_cache(stem, tree, paths, labels, "replicated Tiny train", "error", args.workers)
            return {"seconds": time.perf_counter() - start}

        n = args.images
        digests = {"ours": set(), "baseline": set()}
        children = {} if not args.baseline else {
            f"crop_flip_child_{name}": lambda checkout=checkout, name=name: crop_epoch_in_child(
                checkout, stem, args.threads, n, digests[name])
            for name, checkout in (("ours", ROOT), ("baseline", Path(args.baseline).resolve()))}
        runs = interleaved({  # the cache is built first in every round, then read
            "cache_build": cache_build,
            "pillow_decode_1_process": lambda: pillow_decode(folder, paths),
            "imgdag_crop_flip": lambda: timed(array_batches(stem, False, 0), n),
            "imagefolder_dataloader": lambda: timed(image_folder(folder, args.workers, 0), n),
            "imgdag_affine_warp": lambda: timed(array_batches(stem, True, 0), n),
            "e2e_imgdag": lambda: timed(array_batches(stem, False, 0), stepped, steps, model),
            "e2e_imagefolder": lambda: timed(image_folder(folder, args.workers, 0), stepped, steps, model),
            **children,
        }, args.repeats)
    sides = {name: summary(r, stepped if name.startswith("e2e") else n, "img") for name, r in runs.items()}
    result["sides"] = sides
    result["ratios"] = {
        "data_path_vs_imagefolder": ratio(sides["imgdag_crop_flip"], sides["imagefolder_dataloader"]),
        "affine_warp_vs_imagefolder": ratio(sides["imgdag_affine_warp"], sides["imagefolder_dataloader"]),
        "cache_build_vs_pillow_1_process": ratio(sides["cache_build"], sides["pillow_decode_1_process"]),
        "end_to_end_resnet18_vs_imagefolder": ratio(sides["e2e_imgdag"], sides["e2e_imagefolder"]),
    }
    if args.baseline:
        result["ratios"]["crop_flip_child_baseline_s_over_ours"] = ratio(sides["crop_flip_child_ours"],
                                                                         sides["crop_flip_child_baseline"])
        result["batches_identical_to_baseline"] = len(digests["ours"] | digests["baseline"]) == 1
    write_result("small_images", result, args.out)


if __name__ == "__main__":
    main()
