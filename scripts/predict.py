"""Predict every image in a folder with a trained model; write a CSV of file, label, probability."""
import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from imgdag.atomic import atomic_open
from imgdag.cli import parser, run
from imgdag.engine import autocast, select_device
from imgdag.errors import DataError
from imgdag.models import load_trained_model

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_image(path: Path, size, channels: int) -> np.ndarray:
    """Decode, convert to the model's channels and resize to its input size: (H, W, C) uint8."""
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(image)
    except OSError as e:
        raise DataError(path, f"not a decodable image ({e})") from e
    return array.reshape(*array.shape[:2], channels)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="trained-model file (from train.py)")
    p.add_argument("--images", required=True, help="folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="predictions CSV to write")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = select_device(args.device)
    model, saved = load_trained_model(args.model, device)
    spec, classes = saved["input"], saved["classes"]
    files = sorted(f for f in Path(args.images).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(args.images, f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    mean = torch.tensor(spec["mean"], device=device).view(1, -1, 1, 1) * 255
    std = torch.tensor(spec["std"], device=device).view(1, -1, 1, 1) * 255
    rows = []
    with torch.no_grad():
        for start in tqdm(range(0, len(files), args.batch_size), desc="predict", mininterval=1):
            chunk = files[start:start + args.batch_size]
            x = torch.from_numpy(np.stack([load_image(f, spec["size"], spec["channels"])
                                           for f in chunk])).to(device)
            x = (x.permute(0, 3, 1, 2).float() - mean) / std
            with autocast(device):
                probs = model(x).float().softmax(1)
            best, index = probs.max(1)
            rows += [(str(f.relative_to(args.images)), classes[i], round(float(pr), 6))
                     for f, i, pr in zip(chunk, index.tolist(), best.tolist())]
    with atomic_open(args.out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "probability"])
        writer.writerows(rows)
    print(f"{len(rows)} images predicted into {args.out}")


if __name__ == "__main__":
    run(main)
