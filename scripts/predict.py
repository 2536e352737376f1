"""Predict every image in a folder, or every row of an array cache, with a trained model; write a
CSV of file, label, probability. Images decode in this process: --threads are all torch's, or
--torch-threads fixes the count (probabilities are float sums that depend on it)."""
import csv
import io
from pathlib import Path

import imgdag.threads  # noqa: F401  first: OpenMP reads its wait policy when torch loads
import numpy as np
import torch
from tqdm import tqdm

from imgdag import codec
from imgdag.arraycache import read_array_cache
from imgdag.atomic import atomic_open
from imgdag.cli import parser, run
from imgdag.engine import autocast, select_device
from imgdag.faults import fault_point
from imgdag.errors import DataError
from imgdag.models import load_trained_model
from imgdag.textfiles import read_text
from imgdag.threads import add_thread_arguments, start_threads

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_image(path: Path, size, channels: int) -> np.ndarray:
    """Decode (grey or RGB, as the model's channels) and resize to its input size (imgdag.codec):
    (H, W, C) uint8; DataError naming the file when it is not an image."""
    decode = codec.decode_gray if channels == 1 else codec.decode_rgb
    return codec.resize(decode(codec.read_bytes(path), path), *size)


def image_files(folder) -> tuple[list[str], int]:
    """(sorted relative names of the image files under `folder`, links to files followed; how many
    special files are named like images: a FIFO, socket, device or broken or looping link, which
    are skipped and counted as the layout readers do: reading a FIFO would block). A name that is
    not UTF-8 is a DataError naming it (the predictions CSV is UTF-8 text)."""
    names, special = [], 0
    for path in Path(folder).rglob("*"):
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.is_dir():
            continue
        if not path.is_file():
            special += 1
            continue
        name = path.relative_to(folder).as_posix()
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(path, "the file name is not UTF-8 (the predictions CSV is UTF-8 text); rename it") \
                from None
        names.append(name)
    if not names:
        raise DataError(folder, f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return sorted(names, key=lambda name: name.split("/")), special  # Path order: folder by folder


def folder_batches(folder, names: list[str], spec, batch_size: int):
    """(names, uint8 (B,H,W,C)) batches of the image files `names` under `folder`, decoded and resized."""
    for start in range(0, len(names), batch_size):
        chunk = names[start:start + batch_size]
        yield chunk, np.stack([load_image(Path(folder, name), spec["size"], spec["channels"]) for name in chunk])


def cache_batches(stem, names_csv, spec, batch_size: int):
    """(names, uint8 (B,H,W,C)) batches of an array cache; names from the `file` column of an
    index table with one row per cache row, in order."""
    images, _ = read_array_cache(stem)
    rows = list(csv.DictReader(io.StringIO(read_text(names_csv, "an index table with a file column"))))
    if not rows or "file" not in rows[0] or len(rows) != len(images):
        raise DataError(names_csv, f"expected a CSV with a file column and {len(images)} rows "
                                   f"(one per row of the cache {stem})")
    if list(images.shape[1:]) != [*spec["size"], spec["channels"]]:
        raise DataError(stem, f"cache images are {images.shape[1:]}, the model takes "
                              f"{spec['size']} x {spec['channels']}")
    for start in range(0, len(images), batch_size):
        yield ([r["file"] for r in rows[start:start + batch_size]],
               np.asarray(images[start:start + batch_size]))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="trained-model file (from train.py)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="folder of images (searched recursively)")
    source.add_argument("--cache", help="array cache stem (needs --names)")
    p.add_argument("--names", help="index table CSV whose file column names the cache rows")
    p.add_argument("--out", required=True, help="predictions CSV to write")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto")
    add_thread_arguments(p)
    args = p.parse_args()
    if args.cache and not args.names:
        p.error("--cache needs --names")
    names, special = image_files(args.images) if args.images else ([], 0)  # bad names stop it before any work
    start_threads(args, workers=0)
    device = select_device(args.device)
    model, saved = load_trained_model(args.model, device)
    spec, classes = saved["input"], saved["classes"]
    batches = (cache_batches(args.cache, args.names, spec, args.batch_size) if args.cache
               else folder_batches(args.images, names, spec, args.batch_size))
    mean = torch.tensor(spec["mean"], device=device).view(1, -1, 1, 1) * 255
    std = torch.tensor(spec["std"], device=device).view(1, -1, 1, 1) * 255
    rows = []
    with torch.no_grad():
        for names, images in tqdm(batches, desc="predict", mininterval=1):
            x = torch.from_numpy(images).to(device)
            x = (x.permute(0, 3, 1, 2).float() - mean) / std
            with autocast(device):
                probs = model(x).float().softmax(1)
            best, index = probs.max(1)
            rows += [(name, classes[i], round(float(pr), 6))
                     for name, i, pr in zip(names, index.tolist(), best.tolist())]
    with atomic_open(args.out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "probability"])
        fault_point("predict")
        writer.writerows(rows)
    skipped = f"{special} special files (FIFO, socket, device, broken or looping link)" if special else "none"
    print(f"{len(rows)} images predicted into {args.out}; skipped: {skipped}")


if __name__ == "__main__":
    run(main)
