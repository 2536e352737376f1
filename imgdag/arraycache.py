"""Small images decoded once into a uint8 array on disk, read back memory-mapped.

A cache is two `.npy` files: `<stem>.images.npy` (N,H,W,C uint8) and `<stem>.labels.npy` (N,
int64). Training slices batches from it as whole tensors: no per-image work in the hot loop.
"""
from pathlib import Path

import numpy as np
from tqdm import tqdm

from imgdag.atomic import atomic_path
from imgdag.errors import DataError
from imgdag.faults import fault_point
from imgdag.formats.recordio import RecordReader, decode_image


def cache_paths(stem) -> tuple[Path, Path]:
    """The images and labels files of the cache named `stem`."""
    stem = Path(stem)
    return stem.with_name(stem.name + ".images.npy"), stem.with_name(stem.name + ".labels.npy")


def write_images_cache(stem, count: int, items, source) -> int:
    """Write `count` (name, image (H,W,C) uint8, label) items into the cache `stem`; all images
    must share the first one's shape. `source` names the input in progress and errors."""
    if count == 0:
        raise DataError(source, "no images")
    images_path, labels_path = cache_paths(stem)
    labels = np.empty(count, dtype=np.int64)
    images, shape, written = None, None, 0
    with atomic_path(images_path) as tmp:
        for name, image, label in tqdm(items, total=count, desc=f"decode {Path(source).name}",
                                       mininterval=1):
            if images is None:
                shape = image.shape
                images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                                   shape=(count, *shape))
            if image.shape != shape:
                raise DataError(name, f"image is {image.shape}, expected {shape} like the first")
            images[written], labels[written] = image, label
            written += 1
            fault_point("cache")
        if written != count:
            raise DataError(source, f"{written} images, expected {count}")
        images.flush()
        del images
    with atomic_path(labels_path) as tmp:
        np.save(tmp, labels)
    return count


def write_array_cache(rec_path, idx_path, stem) -> int:
    """Decode every record of a `.rec` into the cache `stem`; all images must share one shape."""
    reader = RecordReader(rec_path, idx_path)

    def items():
        for i in range(len(reader)):
            record = reader[i]
            yield (f"{rec_path}: record {record.header.id}", decode_image(record.image),
                   int(record.header.label))

    return write_images_cache(stem, len(reader), items(), rec_path)


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
