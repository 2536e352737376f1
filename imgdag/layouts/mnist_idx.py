"""MNIST idx files: the raw layout of the MNIST recipe.

Layout (big-endian): images `u32 magic 2051, u32 count, u32 rows, u32 cols` then count*rows*cols
uint8 pixels; labels `u32 magic 2049, u32 count` then count uint8 labels. Files may be gzipped
(`.gz`, the published form), inflated while streaming up to the size the header gives, which
may not pass imgdag.extract's ratio cap (100x the compressed size, at least 1 MiB): a gzip bomb
is refused with memory bounded by the cap, not by what it would inflate to. The four published
files are SPLIT_FILES below.
"""
import gzip
import math
import struct
from pathlib import Path

import numpy as np

from imgdag.atomic import atomic_path
from imgdag.errors import DataError
from imgdag.extract import DAMAGED_DATA_ERRORS, DEFAULT_MAX_RATIO, RATIO_FREE_BYTES
from imgdag.layouts.records import first_per_class

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _open(path: Path):
    if not path.exists():
        raise DataError(path, "file not found (expected an MNIST idx file)")
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_exactly(f, n: int) -> np.ndarray:
    """Up to `n` bytes of `f` in one array, read in place (fewer at the end of the file)."""
    data = np.empty(n, dtype=np.uint8)
    view, got = memoryview(data), 0
    while got < n and (chunk := f.readinto(view[got:])):
        got += chunk
    return data[:got]


def read_idx(path) -> np.ndarray:
    """Read an idx images (N,rows,cols) or labels (N,) file as uint8, checking magic and size.
    The header's size is checked before the data is read; a `.gz` stream is inflated straight
    into the array, and one claiming more than the cap is refused before inflating it."""
    path = Path(path)
    try:
        with _open(path) as f:
            head = f.read(8)
            if len(head) < 8:
                raise DataError(path, f"only {len(head)} bytes; an idx header needs at least 8")
            magic, count = struct.unpack(">II", head)
            if magic == IMAGES_MAGIC:
                dims = f.read(8)
                if len(dims) < 8:
                    raise DataError(path, "truncated idx images header (needs 16 bytes)")
                rows, cols = struct.unpack(">II", dims)
                if not (rows and cols):
                    raise DataError(path, f"images of {rows}x{cols} pixels (expected rows and columns of at least 1)")
                shape = (count, rows, cols)
            elif magic == LABELS_MAGIC:
                shape = (count,)
            else:
                raise DataError(path, f"bad magic number {magic}; expected {IMAGES_MAGIC} (images) "
                                      f"or {LABELS_MAGIC} (labels)")
            expected, size = math.prod(shape), path.stat().st_size
            if path.suffix == ".gz" and expected > max(RATIO_FREE_BYTES, DEFAULT_MAX_RATIO * size):
                raise DataError(path, f"header says {shape} = {expected} bytes of data, over {DEFAULT_MAX_RATIO:g}x "
                                      f"the compressed size (ratio cap; a gzip bomb?)")
            if path.suffix != ".gz" and expected > size - f.tell():
                raise DataError(path, f"header says {shape} = {expected} bytes of data, file has "
                                      f"{size - f.tell()} (truncated or corrupt)")
            data = _read_exactly(f, expected)
            extra = f.read(1)
    except (OSError, *DAMAGED_DATA_ERRORS) as e:
        raise DataError(path, f"cannot decompress ({e}); the file is corrupt or truncated") from e
    if len(data) != expected or extra:
        found = f"{len(data)}" if len(data) != expected else "more"
        raise DataError(path, f"header says {shape} = {expected} bytes of data, "
                              f"file has {found} (truncated or corrupt)")
    return data.reshape(shape)


def read_split(raw_dir, split: str, subset: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N,28,28) and labels (N,) of `split` ('train' or 'test'), cross-checked; with
    `subset` (a smoke run), only the first that many of each digit, in file order."""
    raw_dir = Path(raw_dir)
    images_name, labels_name = SPLIT_FILES[split]
    images, labels = read_idx(raw_dir / images_name), read_idx(raw_dir / labels_name)
    if images.ndim != 3:
        raise DataError(raw_dir / images_name, "expected an idx images file (magic 2051)")
    if labels.ndim != 1:
        raise DataError(raw_dir / labels_name, "expected an idx labels file (magic 2049)")
    if len(images) != len(labels):
        raise DataError(raw_dir / labels_name,
                        f"{len(labels)} labels for {len(images)} images in {images_name}")
    if labels.size and labels.max() > 9:
        raise DataError(raw_dir / labels_name, f"label {labels.max()} outside 0..9")
    if subset is not None:
        picked = first_per_class(labels, subset, 10)
        images, labels = images[picked], labels[picked]
    return images, labels


def write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 images (N,rows,cols) or labels (N,) array as a gzipped idx file, atomically."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim == 3:
        header = struct.pack(">IIII", IMAGES_MAGIC, *array.shape)
    elif array.ndim == 1:
        header = struct.pack(">II", LABELS_MAGIC, len(array))
    else:
        raise ValueError(f"idx arrays are (N,rows,cols) or (N,), got {array.shape}")
    with atomic_path(path) as tmp:
        # no name, mtime=0: the same array always gives the same bytes (stable DVC hashes)
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
            f.write(header + array.tobytes())
