"""Demo Tiny ImageNet: `tiny-imagenet-200.zip` in the real layout, 10 real Tiny ImageNet WNIDs.

Under `tiny-imagenet-200/`: wnids.txt (the 10 WNIDs, unsorted as in the real file),
words.txt, train/<wnid>/images/<wnid>_<i>.JPEG (30 per class) + <wnid>_boxes.txt,
val/images/val_<i>.JPEG (50) + val/val_annotations.txt, test/images/test_<i>.JPEG (20).
All 64x64 JPEGs, about 5% grayscale; boxes are the drawn shape's corners. Class k of the
painter is the k-th WNID in sorted order (the reader's label order).
"""
from pathlib import Path

import numpy as np

from imgdag.demo.archives import write_zip
from imgdag.demo.shapes import draw_class_image, jpeg_bytes

TINY_WORDS = {
    "n02124075": "Egyptian cat", "n04067472": "reel", "n04540053": "volleyball",
    "n04099969": "rocking chair, rocker", "n07749582": "lemon",
    "n01641577": "bullfrog, Rana catesbeiana", "n02802426": "basketball",
    "n09246464": "cliff, drop, drop-off", "n07920052": "espresso",
    "n03970156": "plunger, plumber's helper",
}
TINY_WNIDS = list(TINY_WORDS)  # wnids.txt order (not sorted, like the real file)
OTHER_WORDS = {"n00001740": "entity", "n00001930": "physical entity", "n00002137": "abstraction, abstract entity"}
SIZE = 64
GRAY_FRACTION = 0.05


def make_demo_tiny_imagenet(out_dir, seed: int = 0, train_per_class: int = 30, val_images: int = 50,
                            test_images: int = 20) -> Path:
    """Write OUT/tiny-imagenet-200.zip; returns its path."""
    rng = np.random.default_rng(seed)
    label_of = {wnid: k for k, wnid in enumerate(sorted(TINY_WNIDS))}
    top = "tiny-imagenet-200"

    def image(wnid):
        picture, box = draw_class_image(label_of[wnid], rng, SIZE, SIZE, gray=rng.random() < GRAY_FRACTION)
        return jpeg_bytes(picture, rng), box

    def members():
        yield f"{top}/wnids.txt", "".join(f"{w}\n" for w in TINY_WNIDS).encode()
        words = sorted({**OTHER_WORDS, **TINY_WORDS}.items())
        yield f"{top}/words.txt", "".join(f"{w}\t{t}\n" for w, t in words).encode()
        for wnid in TINY_WNIDS:
            boxes = []
            for i in range(train_per_class):
                data, box = image(wnid)
                boxes.append(f"{wnid}_{i}.JPEG\t" + "\t".join(map(str, box)) + "\n")
                yield f"{top}/train/{wnid}/images/{wnid}_{i}.JPEG", data
            yield f"{top}/train/{wnid}/{wnid}_boxes.txt", "".join(boxes).encode()
        annotations = []
        for i in range(val_images):
            wnid = TINY_WNIDS[int(rng.integers(len(TINY_WNIDS)))]
            data, box = image(wnid)
            annotations.append(f"val_{i}.JPEG\t{wnid}\t" + "\t".join(map(str, box)) + "\n")
            yield f"{top}/val/images/val_{i}.JPEG", data
        yield f"{top}/val/val_annotations.txt", "".join(annotations).encode()
        for i in range(test_images):
            yield f"{top}/test/images/test_{i}.JPEG", image(TINY_WNIDS[int(rng.integers(len(TINY_WNIDS)))])[0]

    path = Path(out_dir) / "tiny-imagenet-200.zip"
    write_zip(path, members())
    return path
