"""Write array caches (format: imgdag.arraycache): decode image files, or a `.rec`'s records,
once into a uint8 array on disk.

`write_files_cache` decodes image files with worker processes that write their chunks straight
into the preallocated memory-mapped file. The file's disk space is reserved before anything is
written into the mapping: a write into a mapping that the disk cannot back kills the process
(SIGBUS), so a full disk would otherwise end it without a word, or hang the pool of workers.
"""
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from imgdag.arraycache import cache_paths
from imgdag.atomic import atomic_path
from imgdag.codec import decode_rgb, decode_stored
from imgdag.errors import DataError
from imgdag.faults import fault_point
from imgdag.formats.recordio import RecordReader
from imgdag.layouts.tree import open_tree
from imgdag.pool import process_pool

CHUNK = 256  # images per task handed to a worker


def _reserved_memmap(path, shape) -> np.memmap:
    """A new uint8 `.npy` of `shape` at `path`, memory-mapped for writing, its whole size reserved
    on the disk first (a full disk: OSError ENOSPC, which atomic_path names)."""
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    return images


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
                images = _reserved_memmap(tmp, (count, *shape))
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
            source = f"{rec_path} record {record.header.id}"
            if not float(record.header.label).is_integer():
                raise DataError(source, f"label {record.header.label:g} is not an integer class label")
            yield source, decode_stored(record.image, source), int(record.header.label)

    return write_images_cache(stem, len(reader), items(), rec_path)


def write_files_cache(stem, raw, paths: list[str], labels, source, workers: int = 1) -> int:
    """Decode the images `paths` (names in the tree `raw`: a folder or an archive) into the
    cache `stem` with `workers` processes; the first image fixes the shape all must share.
    `source` (the list the paths come from) is named in errors about the whole set."""
    if not paths:
        raise DataError(source, "no images")
    images_path, labels_path = cache_paths(stem)
    with open_tree(raw) as tree:
        shape = _decode(tree, paths[0]).shape
    with atomic_path(images_path) as tmp:
        _reserved_memmap(tmp, (len(paths), *shape))
        jobs = [(start, paths[start:start + CHUNK]) for start in range(0, len(paths), CHUNK)]
        with process_pool(workers, _open_worker, (raw, tmp)) if workers > 1 else _InProcess(
                raw, tmp) as pool:
            for problem in tqdm(pool.imap_unordered(_decode_chunk, jobs), total=len(jobs),
                                desc=f"decode {Path(source).name}", unit="chunk", mininterval=1):
                if problem:
                    raise DataError(*problem)
    with atomic_path(labels_path) as tmp:
        np.save(tmp, np.asarray(labels, dtype=np.int64))
    return len(paths)


def _decode(tree, name: str) -> np.ndarray:
    return decode_rgb(tree.read_bytes(name), tree.where(name))


_worker: dict = {}  # this process's tree and memory-mapped output


def _open_worker(raw, images_file) -> None:
    _worker["tree"] = open_tree(raw)
    _worker["images"] = np.load(images_file, mmap_mode="r+")


def _decode_chunk(job) -> tuple[str, str] | None:
    """Decode one chunk into its rows; (file, problem) for the first bad image, else None."""
    start, names = job
    tree, images = _worker["tree"], _worker["images"]
    for i, name in enumerate(names, start):
        try:
            image = _decode(tree, name)
        except DataError as e:
            return e.path, e.problem
        if image.shape != images.shape[1:]:
            return tree.where(name), f"image is {image.shape}, expected {images.shape[1:]} like the first"
        images[i] = image  # a shared mapping: the page cache holds it for every process
    return None


class _InProcess:
    """The Pool interface, run in this process (workers=1)."""

    def __init__(self, raw, images_file):
        _open_worker(raw, images_file)

    def imap_unordered(self, function, jobs):
        return map(function, jobs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _worker.pop("tree").close()
        _worker.clear()
