"""MNIST idx files: the raw layout of the MNIST recipe.

Layout (big-endian): images `u32 magic 2051, u32 count, u32 rows, u32 cols` then count*rows*cols
uint8 pixels; labels `u32 magic 2049, u32 count` then count uint8 labels. Files may be gzipped
(`.gz`, the published form). The four published files are SPLIT_FILES below.
"""
import gzip
import struct
from pathlib import Path

import numpy as np

from imgdag.atomic import atomic_path
from imgdag.errors import DataError

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataError(path, "file not found (expected an MNIST idx file)")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(path, f"cannot decompress ({e}); the file is corrupt or truncated") from e


def read_idx(path) -> np.ndarray:
    """Read an idx images (N,rows,cols) or labels (N,) file as uint8, checking magic and size."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 8:
        raise DataError(path, f"only {len(data)} bytes; an idx header needs at least 8")
    magic, count = struct.unpack(">II", data[:8])
    if magic == IMAGES_MAGIC:
        if len(data) < 16:
            raise DataError(path, "truncated idx images header (needs 16 bytes)")
        rows, cols = struct.unpack(">II", data[8:16])
        shape, offset = (count, rows, cols), 16
    elif magic == LABELS_MAGIC:
        shape, offset = (count,), 8
    else:
        raise DataError(path, f"bad magic number {magic}; expected {IMAGES_MAGIC} (images) "
                              f"or {LABELS_MAGIC} (labels)")
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise DataError(path, f"header says {shape} = {expected} bytes of data, "
                              f"file has {len(data) - offset} (truncated or corrupt)")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def read_split(raw_dir, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N,28,28) and labels (N,) of `split` ('train' or 'test'), cross-checked."""
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
