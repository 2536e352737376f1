"""Small images decoded once into a uint8 array on disk, read back memory-mapped.

A cache is two `.npy` files: `<stem>.images.npy` (N,H,W,C uint8) and `<stem>.labels.npy` (N,
int64). Training slices batches from it as whole tensors: no per-image work in the hot loop.
"""
from pathlib import Path

import numpy as np
from tqdm import tqdm

from imgdag.atomic import atomic_path
from imgdag.errors import DataError
from imgdag.formats.recordio import RecordReader, decode_image


def cache_paths(stem) -> tuple[Path, Path]:
    """The images and labels files of the cache named `stem`."""
    stem = Path(stem)
    return stem.with_name(stem.name + ".images.npy"), stem.with_name(stem.name + ".labels.npy")


def write_array_cache(rec_path, idx_path, stem) -> int:
    """Decode every record of a `.rec` into the cache `stem`; all images must share one shape."""
    reader = RecordReader(rec_path, idx_path)
    if len(reader) == 0:
        raise DataError(rec_path, "no records")
    images_path, labels_path = cache_paths(stem)
    first = decode_image(reader[0].image)
    labels = np.empty(len(reader), dtype=np.int64)
    with atomic_path(images_path) as tmp:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                           shape=(len(reader), *first.shape))
        for i in tqdm(range(len(reader)), desc=f"decode {Path(rec_path).name}", mininterval=1):
            record = reader[i]
            image = decode_image(record.image)
            if image.shape != first.shape:
                raise DataError(rec_path, f"record {record.header.id} is {image.shape}, "
                                          f"expected {first.shape} like the first record")
            images[i] = image
            labels[i] = int(record.header.label)
        images.flush()
        del images
    with atomic_path(labels_path) as tmp:
        np.save(tmp, labels)
    return len(labels)


def read_array_cache(stem) -> tuple[np.ndarray, np.ndarray]:
    """The memory-mapped images (N,H,W,C uint8) and labels (N,) of the cache `stem`."""
    images_path, labels_path = cache_paths(stem)
    for path in (images_path, labels_path):
        if not path.exists():
            raise DataError(path, "array cache file not found")
    images = np.load(images_path, mmap_mode="r")
    labels = np.load(labels_path)
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) != len(labels):
        raise DataError(images_path, f"expected (N,H,W,C) uint8 with {len(labels)} rows, "
                                     f"got {images.shape} {images.dtype}")
    return images, labels
