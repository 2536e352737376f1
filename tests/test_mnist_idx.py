"""MNIST idx reading: round trip, and clear errors for wrong or damaged files."""
import gzip
import struct

import numpy as np
import pytest

from imgdag.demo.mnist import make_demo_mnist
from imgdag.errors import DataError
from imgdag.layouts.mnist_idx import SPLIT_FILES, read_idx, read_split, write_idx


def test_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 3, 9, 1, 2], dtype=np.uint8)
    write_idx(tmp_path / "i.gz", images)
    write_idx(tmp_path / "l.gz", labels)
    assert np.array_equal(read_idx(tmp_path / "i.gz"), images)
    assert np.array_equal(read_idx(tmp_path / "l.gz"), labels)
    # deterministic bytes: same array, same file (stable DVC hashes)
    first = (tmp_path / "i.gz").read_bytes()
    write_idx(tmp_path / "i.gz", images)
    assert (tmp_path / "i.gz").read_bytes() == first


def test_bad_magic_names_file(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", 1234, 0))
    with pytest.raises(DataError, match=r"x\.gz: bad magic number 1234"):
        read_idx(path)


def test_truncated_data_names_file(tmp_path):
    path = tmp_path / "t.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, 3, 28, 28) + bytes(28 * 28 * 2))
    with pytest.raises(DataError, match=r"t\.gz: header says \(3, 28, 28\)"):
        read_idx(path)


def test_truncated_gzip_names_file(tmp_path):
    write_idx(tmp_path / "i.gz", np.zeros((50, 28, 28), np.uint8))
    data = (tmp_path / "i.gz").read_bytes()
    (tmp_path / "i.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_idx(tmp_path / "i.gz")


def test_split_checks_counts_and_missing_files(tmp_path):
    images_name, labels_name = SPLIT_FILES["train"]
    write_idx(tmp_path / images_name, np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(DataError, match=f"{labels_name}: file not found"):
        read_split(tmp_path, "train")
    write_idx(tmp_path / labels_name, np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="3 labels for 4 images"):
        read_split(tmp_path, "train")


def test_demo_is_mnist_shaped_and_balanced(tmp_path):
    counts = make_demo_mnist(tmp_path)
    for split in ("train", "test"):
        images, labels = read_split(tmp_path, split)
        assert images.shape == (counts[split], 28, 28)
        assert set(np.unique(labels)) == set(range(10))
        assert 20 < images.mean() < 80  # dark background, bright strokes, as MNIST
    assert counts["train"] > 3000 and counts["test"] > 500
