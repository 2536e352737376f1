"""Small images (Tiny ImageNet 64 px JPEGs): imgdag's decode-once cache and whole-batch
augmentation against torchvision ImageFolder + DataLoader, side by side. Writes JSON.

The real Tiny train JPEGs (../shared/realdata, 1,000 images) are replicated (hard links) to
--images files in class folders. Measured, each side interleaved with the other (A B A B ...):
- data path alone (no model), crop 56-64 px scaled back to 64 + mirror, batch 64:
  `ArrayBatches` + `random_crop_flip` (integer gather) | the same with the affine warp
  (`random_crop_rotate`, what ran before) | ImageFolder + DataLoader with RandomResizedCrop +
  RandomHorizontalFlip + ToTensor + Normalize and --workers loader processes;
- the decode-once cache build (`write_files_cache`, --workers processes) in img/s, next to
  Pillow decoding the same files in one process;
- end to end: --train-batches SGD steps of ResNet-18 (64 px) on each data path.
"""
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import imgdag.threads  # noqa: E402,F401  before torch: idle OpenMP threads sleep

import torch  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

from imgdag.arraycache import read_array_cache, write_files_cache  # noqa: E402
from imgdag.augment import batch_augment  # noqa: E402
from imgdag.batches import ArrayBatches  # noqa: E402
from imgdag.cli import parser  # noqa: E402
from imgdag.codec import decode_rgb  # noqa: E402
from imgdag.models import build_model  # noqa: E402
from imgdag.threads import use_threads  # noqa: E402

TINY = ROOT.parent / "shared" / "realdata" / "tiny-imagenet-200"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CROP_MIN, CROP_MAX, BATCH = 56, 64, 64


def replicate(folder: Path, count: int) -> tuple[list[str], list[int]]:
    """`count` class-folder JPEGs (hard links of the real ones, round robin); paths, labels."""
    sources = sorted(TINY.glob("train/*/images/*.JPEG"))
    if not sources:
        sys.exit(f"error: {TINY}: no Tiny ImageNet train JPEGs (real data absent)")
    classes = sorted({p.parts[-3] for p in sources})
    paths, labels = [], []
    for i in range(count):
        source = sources[i % len(sources)]
        name = f"{source.parts[-3]}/{source.stem}_{i // len(sources)}.JPEG"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        os.link(source, folder / name)
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


def timed(batches, limit=None, model=None) -> tuple[float, int]:
    """Seconds and images to draw `limit` batches (all when None), with SGD steps if model."""
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
    return time.perf_counter() - start, seen


def pillow_decode(folder: Path, paths: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    for name in paths:
        decode_rgb((folder / name).read_bytes(), name)
    return time.perf_counter() - start, len(paths)


def stats(runs: list[tuple[float, int]]) -> dict:
    rates = [n / s for s, n in runs]
    return {"median_img_per_s": round(statistics.median(rates), 1),
            "min_img_per_s": round(min(rates), 1), "runs_s": [round(s, 3) for s, _ in runs],
            "images": runs[0][1]}


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
    p.add_argument("--out", default=str(ROOT / "benchmarks/out/small_images.json"))
    args = p.parse_args()
    if args.quick:
        args.images, args.repeats, args.train_batches = 640, 1, 2
    use_threads(args.threads)
    loads = []
    runs = {k: [] for k in ("cache_build", "pillow_decode_1_process", "imgdag_crop_flip",
                            "imgdag_affine_warp", "imagefolder_dataloader",
                            "e2e_imgdag", "e2e_imagefolder")}
    with tempfile.TemporaryDirectory() as tmp:
        folder, stem = Path(tmp) / "folders", Path(tmp) / "cache"
        paths, labels = replicate(folder, args.images)
        torch.manual_seed(0)
        model = build_model("resnet18_64px", len(set(labels)), stem="imagenet")
        for repeat in range(args.repeats):
            loads.append(os.getloadavg()[0])
            start = time.perf_counter()
            write_files_cache(stem, folder, paths, labels, "replicated Tiny train",
                              workers=args.workers)
            runs["cache_build"].append((time.perf_counter() - start, len(paths)))
            runs["pillow_decode_1_process"].append(pillow_decode(folder, paths))
            runs["imgdag_crop_flip"].append(timed(array_batches(stem, False, repeat)))
            runs["imagefolder_dataloader"].append(timed(image_folder(folder, args.workers,
                                                                     repeat)))
            runs["imgdag_affine_warp"].append(timed(array_batches(stem, True, repeat)))
            runs["e2e_imgdag"].append(timed(array_batches(stem, False, repeat),
                                            args.train_batches, model))
            runs["e2e_imagefolder"].append(timed(image_folder(folder, args.workers, repeat),
                                                 args.train_batches, model))
            loads.append(os.getloadavg()[0])
    result = {"images": args.images, "source": str(TINY / "train"), "quick": args.quick,
              "workers": args.workers, "threads": args.threads, "repeats": args.repeats,
              "batch_size": BATCH, "augment": f"crop {CROP_MIN}-{CROP_MAX} px + mirror",
              "sides": {k: stats(v) for k, v in runs.items()},
              "load_average_1min": [round(v, 2) for v in loads]}
    med = {k: v["median_img_per_s"] for k, v in result["sides"].items()}
    result["ratios"] = {
        "data_path_vs_imagefolder": round(med["imgdag_crop_flip"] / med["imagefolder_dataloader"], 2),
        "affine_warp_vs_imagefolder": round(med["imgdag_affine_warp"] / med["imagefolder_dataloader"], 2),
        "cache_build_vs_pillow_1_process": round(med["cache_build"] / med["pillow_decode_1_process"], 2),
        "end_to_end_resnet18_vs_imagefolder": round(med["e2e_imgdag"] / med["e2e_imagefolder"], 2),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("ratios", "load_average_1min")} |
                     {"img_per_s": med}, indent=2))


if __name__ == "__main__":
    main()
