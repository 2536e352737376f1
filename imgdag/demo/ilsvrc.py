"""Demo ILSVRC2012 validation set: val tar, devkit and Caffe label files in the real names.

    ILSVRC2012_img_val.tar           ILSVRC2012_val_00000001.JPEG ... (flat, 96 images)
    ILSVRC2012_devkit_t12.tar.gz     ILSVRC2012_devkit_t12/data/meta.mat
                                     ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt
    caffe_ilsvrc12/val.txt           NAME label (label = line in synset_words.txt)
    caffe_ilsvrc12/synset_words.txt  1,000 leaf WNIDs, sorted, with words

meta.mat has 1,000 leaf synsets (the 8 real imagenet-8 WNIDs and 992 synthetic
`n9xxxxxxx` ones) with ILSVRC2012_IDs 1..1000 assigned in a shuffled order (not sorted WNID
order), plus 20 non-leaf synsets (IDs 1001..1020) with children. 80 of the images (10 per
class) are of the imagenet-8 classes, drawn by the same `imagenet8_jpeg` as the imagenet-8
demo; 16 are of other synthetic classes. A wrong ID -> WNID mapping gives chance accuracy.
"""
from pathlib import Path

import numpy as np

from imgdag.atomic import atomic_open
from imgdag.demo.archives import write_tar
from imgdag.demo.imagenet import IMAGENET8_WNIDS, IMAGENET8_WORDS, imagenet8_jpeg
from imgdag.layouts.ilsvrc_val import GROUND_TRUTH, VAL_NAME, Synset, meta_mat_bytes

LEAVES, PARENTS = 1000, 20


def demo_synsets(rng: np.random.Generator) -> list[Synset]:
    """1,000 leaves with shuffled IDs, then 20 parents; in ILSVRC2012_ID order like the real file."""
    numbers = rng.choice(10**7, size=LEAVES - len(IMAGENET8_WNIDS), replace=False)
    synthetic = [f"n9{n:07d}" for n in numbers]
    words = dict(zip(IMAGENET8_WNIDS, IMAGENET8_WORDS)) | {w: f"synthetic class {w}" for w in synthetic}
    wnids = sorted(words)
    ids = rng.permutation(np.arange(1, LEAVES + 1)).tolist()
    leaves = [Synset(i, w, words[w], "a demo leaf synset", 0, (), 0, int(rng.integers(732, 1301)))
              for i, w in sorted(zip(ids, wnids))]
    parents = []
    for p in range(PARENTS):
        children = tuple(sorted(int(c) for c in rng.choice(np.arange(1, LEAVES + 1), size=5, replace=False)))
        images = sum(leaves[c - 1].num_train_images for c in children)
        parents.append(Synset(LEAVES + 1 + p, f"n8{p:07d}", f"demo group {p}", "a demo non-leaf synset",
                              len(children), children, 1, images))
    return leaves + parents


def make_demo_ilsvrc_val(out_dir, seed: int = 0, per_class: int = 10, other_images: int = 16) -> Path:
    """Write the val tar, devkit and Caffe files into OUT; returns OUT."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    synsets = demo_synsets(rng)
    leaves = synsets[:LEAVES]
    id_of = {s.wnid: s.ilsvrc2012_id for s in leaves}
    others = [s.wnid for s in leaves if s.wnid not in IMAGENET8_WNIDS]
    other_wnids = [others[int(i)] for i in rng.choice(len(others), size=other_images, replace=False)]
    # painter class: imagenet-8 index k for its WNIDs, 8 + j for the j-th other class
    images = [(k, w) for k, w in enumerate(IMAGENET8_WNIDS) for _ in range(per_class)]
    images += [(len(IMAGENET8_WNIDS) + j, w) for j, w in enumerate(other_wnids)]
    images = [images[int(i)] for i in rng.permutation(len(images))]

    write_tar(out / "ILSVRC2012_img_val.tar",
              ((VAL_NAME.format(n), imagenet8_jpeg(k, rng)) for n, (k, _) in enumerate(images, 1)))
    devkit = out / "ILSVRC2012_devkit_t12"
    meta = meta_mat_bytes(synsets)
    truth = "".join(f"{id_of[w]}\n" for _, w in images).encode()
    write_tar(out / "ILSVRC2012_devkit_t12.tar.gz",
              [(f"{devkit.name}/data/meta.mat", meta), (f"{devkit.name}/data/{GROUND_TRUTH}", truth)], gzipped=True)

    sorted_wnids = sorted(id_of)
    caffe = out / "caffe_ilsvrc12"
    with atomic_open(caffe / "synset_words.txt", "w", newline="\n") as f:
        words = {s.wnid: s.words for s in leaves}
        f.writelines(f"{w} {words[w]}\n" for w in sorted_wnids)
    label = {w: i for i, w in enumerate(sorted_wnids)}
    with atomic_open(caffe / "val.txt", "w", newline="\n") as f:
        f.writelines(f"{VAL_NAME.format(n)} {label[w]}\n" for n, (_, w) in enumerate(images, 1))
    return out
