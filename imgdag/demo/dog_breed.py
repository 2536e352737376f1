"""Demo Kaggle dog-breed-identification: `train.zip`, `test.zip`, `labels.csv`, `sample_submission.csv`.

6 real Kaggle breeds, 10-14 train images each (so the rarest class sets the validation
count) and 20 test images; ids are 32 hex digits as on Kaggle; JPEGs of 64-160 px.
train.zip holds `train/<id>.jpg`, test.zip `test/<id>.jpg`; labels.csv is `id,breed`
sorted by id; sample_submission.csv is `id,<breeds in sorted order>` with uniform
probabilities. Breed k in sorted order is painter class k.
"""
from pathlib import Path

import numpy as np

from imgdag.atomic import atomic_open
from imgdag.demo.archives import write_zip
from imgdag.demo.shapes import draw_class_image, jpeg_bytes

DOG_BREEDS = ["beagle", "boxer", "chihuahua", "golden_retriever", "pug", "siberian_husky"]


def _dog_jpeg(class_index: int, rng: np.random.Generator) -> bytes:
    width, height = (int(v) for v in rng.integers(64, 161, size=2))
    return jpeg_bytes(draw_class_image(class_index, rng, width, height)[0], rng)


def make_demo_dog_breed(out_dir, seed: int = 0, test_images: int = 20) -> Path:
    """Write the four Kaggle files into OUT; returns OUT."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    unique = sorted({"".join(rng.choice(list("0123456789abcdef"), 32)) for _ in range(200)})
    ids = iter(rng.permutation(unique).tolist())
    labels = {}
    for k, breed in enumerate(DOG_BREEDS):
        for _ in range(int(rng.integers(10, 15))):
            labels[next(ids)] = k
    test_ids = [next(ids) for _ in range(test_images)]
    train_ids = sorted(labels)
    write_zip(out / "train.zip", ((f"train/{i}.jpg", _dog_jpeg(labels[i], rng)) for i in train_ids))
    write_zip(out / "test.zip", ((f"test/{i}.jpg", _dog_jpeg(int(rng.integers(len(DOG_BREEDS))), rng))
                                 for i in sorted(test_ids)))
    with atomic_open(out / "labels.csv", "w", newline="\n") as f:
        f.write("id,breed\n")
        f.writelines(f"{i},{DOG_BREEDS[labels[i]]}\n" for i in train_ids)
    with atomic_open(out / "sample_submission.csv", "w", newline="\n") as f:
        f.write("id," + ",".join(DOG_BREEDS) + "\n")
        uniform = ",".join([f"{1 / len(DOG_BREEDS):.9f}"] * len(DOG_BREEDS))
        f.writelines(f"{i},{uniform}\n" for i in sorted(test_ids))
    return out
