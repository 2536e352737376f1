"""Small images decoded once into a uint8 array on disk, read back memory-mapped.

A cache is two `.npy` files: `<stem>.images.npy` (N,H,W,C uint8) and `<stem>.labels.npy` (N,
int64). Training slices batches from it as whole tensors: no per-image work in the hot loop.
This module reads caches; imgdag.arraycache_writer writes them.
"""
from pathlib import Path

import numpy as np

from imgdag.errors import DataError


def cache_paths(stem) -> tuple[Path, Path]:
    """The images and labels files of the cache named `stem`."""
    stem = Path(stem)
    return stem.with_name(stem.name + ".images.npy"), stem.with_name(stem.name + ".labels.npy")


def cache_stem(images_path) -> str:
    """The stem of the cache whose images file is `images_path` (cache_paths' inverse): a rule
    names the files, its scripts take the stem."""
    name = str(images_path)
    if not name.endswith(".images.npy"):
        raise ValueError(f"{name}: not an array cache's images file (<stem>.images.npy)")
    return name[:-len(".images.npy")]


def _load_array(path, **kwargs) -> np.ndarray:
    """np.load of a cache file (no pickles); an empty, truncated or foreign file is a DataError."""
    try:
        return np.load(path, **kwargs)
    except (EOFError, ValueError, OSError) as e:
        raise DataError(path, f"not a readable .npy array ({e}): delete it and rerun the step that "
                              "writes it") from None


def read_array_cache(stem) -> tuple[np.ndarray, np.ndarray]:
    """The memory-mapped images (N,H,W,C uint8) and labels (N,) of the cache `stem`."""
    images_path, labels_path = cache_paths(stem)
    for path in (images_path, labels_path):
        if not path.exists():
            raise DataError(path, "array cache file not found")
    images, labels = _load_array(images_path, mmap_mode="r"), _load_array(labels_path)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(labels_path, f"expected (N,) integer labels, got {labels.shape} {labels.dtype}: "
                                     "delete it and rerun the step that writes it")
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) != len(labels):
        raise DataError(images_path, f"expected (N,H,W,C) uint8 with {len(labels)} rows, "
                                     f"got {images.shape} {images.dtype}")
    return images, labels
