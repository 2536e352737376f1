"""Demo imagenet-8: `imagenet-8.tar` holding `train/<wnid>/<wnid>_<n>.JPEG` and
`validation/<wnid>/ILSVRC2012_val_<8 digits>.JPEG` for the 8 imagenet-8 WNIDs.

8 classes x (40 train + 10 validation) JPEGs of 64-160 px, about 3% grayscale (as in
ImageNet). Class k (sorted WNID order) is drawn by `imgdag.demo.shapes` class k; the
ILSVRC demo draws its val images with the same `imagenet8_jpeg`, so a model trained here
recognises them.
"""
from pathlib import Path

import numpy as np

from imgdag.demo.archives import write_tar
from imgdag.demo.shapes import draw_class_image, jpeg_bytes

IMAGENET8_WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361",
                   "n01494475", "n01496331", "n01498041", "n01514668"]
IMAGENET8_WORDS = ["tench, Tinca tinca", "goldfish, Carassius auratus",
                   "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias",
                   "tiger shark, Galeocerdo cuvieri", "hammerhead, hammerhead shark",
                   "electric ray, crampfish, numbfish, torpedo", "stingray", "cock"]
GRAY_FRACTION = 0.03


def imagenet8_jpeg(class_index: int, rng: np.random.Generator) -> bytes:
    """One JPEG of imagenet-8 class `class_index` (or of any other painter class), 64-160 px."""
    width, height = (int(v) for v in rng.integers(64, 161, size=2))
    image, _ = draw_class_image(class_index, rng, width, height, gray=rng.random() < GRAY_FRACTION)
    return jpeg_bytes(image, rng)


def make_demo_imagenet8(out_dir, seed: int = 0, train_per_class: int = 40, val_per_class: int = 10) -> Path:
    """Write OUT/imagenet-8.tar; returns its path."""
    rng = np.random.default_rng(seed)
    val_numbers = iter(rng.permutation(np.arange(1, 50001))[: 8 * val_per_class].tolist())

    def members():
        for k, wnid in enumerate(IMAGENET8_WNIDS):
            numbers = sorted(int(n) for n in rng.choice(1300 * 10, size=train_per_class, replace=False))
            for n in numbers:
                yield f"train/{wnid}/{wnid}_{n}.JPEG", imagenet8_jpeg(k, rng)
        for k, wnid in enumerate(IMAGENET8_WNIDS):
            for n in sorted(next(val_numbers) for _ in range(val_per_class)):
                yield f"validation/{wnid}/ILSVRC2012_val_{n:08d}.JPEG", imagenet8_jpeg(k, rng)

    path = Path(out_dir) / "imagenet-8.tar"
    write_tar(path, members())
    return path
