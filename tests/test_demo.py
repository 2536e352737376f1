"""Demo generators: reproducible bytes, documented sizes, classes a simple model separates."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from imgdag.codec import decode_rgb, resize
from imgdag.demo.dog_breed import make_demo_dog_breed
from imgdag.demo.ilsvrc import make_demo_ilsvrc_val
from imgdag.demo.imagenet import make_demo_imagenet8
from imgdag.demo.shapes import PALETTE, SHAPES, class_style
from imgdag.demo.tiny_imagenet import make_demo_tiny_imagenet
from imgdag.layouts.tiny_imagenet import read_tiny_imagenet

SMALL = {
    make_demo_imagenet8: {"train_per_class": 3, "val_per_class": 1},
    make_demo_tiny_imagenet: {"train_per_class": 3, "val_images": 5, "test_images": 2},
    make_demo_dog_breed: {"test_images": 3},
    make_demo_ilsvrc_val: {"per_class": 1, "other_images": 2},
}


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("make", list(SMALL), ids=lambda f: f.__name__)
def test_same_seed_same_bytes(tmp_path, make):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        make(tmp_path / name, seed=seed, **SMALL[make])
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_class_styles_are_distinct():
    styles = [class_style(k) for k in range(len(SHAPES) * len(PALETTE))]
    assert len(set(styles)) == len(styles)
    assert len({class_style(k)[1] for k in range(8)}) == 8


def test_tiny_demo_classes_are_separable(tmp_path):
    """A linear model on 8x8 thumbnails beats chance (10%) by far: the classes are learnable."""
    make_demo_tiny_imagenet(tmp_path)
    reading = read_tiny_imagenet(tmp_path / "tiny-imagenet-200.zip")

    def arrays(split):
        x = [resize(decode_rgb(reading.read_bytes(split, r), r.path), 8, 8).astype(np.float32).ravel() / 255
             for r in reading.records(split)]
        return np.stack(x), np.array([r.label for r in reading.records(split)])

    x, y = arrays("train")
    xv, yv = arrays("val")
    accuracy = LogisticRegression(max_iter=300).fit(x, y).score(xv, yv)
    assert accuracy > 0.5, accuracy
