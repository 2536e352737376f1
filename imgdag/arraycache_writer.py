"""Write array caches (format: imgdag.arraycache): decode image files, or a `.rec`'s records,
once into a uint8 array on disk.

`write_files_cache` decodes image files with worker processes that write their chunks straight
into the preallocated memory-mapped file; that one decode is also the images' check
(checks.bad_images), and the workers share the caller's listing of the folder or archive. The
file's disk space is reserved before anything is written into the mapping: a write into a
mapping that the disk cannot back kills the process (SIGBUS), so a full disk would otherwise
end it without a word, or hang the pool of workers.
"""
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from imgdag.arraycache import cache_paths
from imgdag.atomic import atomic_path
from imgdag.codec import decode_rgb, decode_stored
from imgdag.errors import DataError
from imgdag.faults import fault_point
from imgdag.formats.recordio import RecordReader
from imgdag.pool import process_pool

if TYPE_CHECKING:  # a type only: the .rec caches' jobs do not depend on the layout walker
    from imgdag.layouts.tree import FileTree

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


def write_files_cache(stem, tree: "FileTree", names: list[str], labels, source, bad_images: str = "error",
                      workers: int = 1) -> dict[int, str]:
    """Decode the images `names` of `tree` (a folder or an archive, listed once by the caller)
    into the cache `stem` with `workers` processes, which share the listing; the first image that
    decodes fixes the shape all must share. This decode is the images' check (checks.bad_images,
    as imgdag.imagecheck words it): with bad_images "skip" an image that does not decode is left
    out of the cache and returned, {row of `names`: "file: problem"}; with "error", the first is
    a DataError naming it. `source` (the list the names come from) is named in errors about the
    whole set."""
    if bad_images not in ("skip", "error"):
        raise ValueError(f"bad_images must be skip or error, got {bad_images!r}")
    if not names:
        raise DataError(source, "no images")
    skipped: dict[int, str] = {}
    first, image = _first_image(tree, names, bad_images, skipped, source)
    images_path, labels_path = cache_paths(stem)
    with atomic_path(images_path) as tmp:
        images = _reserved_memmap(tmp, (len(names), *image.shape))
        images[first] = image
        images.flush()
        del images
        jobs = [(start, names[start:start + CHUNK]) for start in range(first + 1, len(names), CHUNK)]
        with process_pool(workers, _open_worker, (tree, tmp)) if workers > 1 else _InProcess(
                tree, tmp) as pool:
            for bad, mismatch in tqdm(pool.imap_unordered(_decode_chunk, jobs), total=len(jobs),
                                      desc=f"decode {Path(source).name}", unit="chunk", mininterval=1):
                for row, where, problem in bad:
                    if bad_images == "error":
                        raise DataError(where, problem)
                    skipped[row] = f"{where}: {problem}"
                if mismatch:
                    raise DataError(*mismatch)
        if skipped:
            _drop_rows(tmp, set(skipped))
    with atomic_path(labels_path) as tmp:
        np.save(tmp, np.asarray([label for row, label in enumerate(labels) if row not in skipped], dtype=np.int64))
    return dict(sorted(skipped.items()))


def _decode(tree, name: str) -> np.ndarray:
    data = tree.read_bytes(name)
    try:
        return decode_rgb(data, name)
    except DataError as e:  # named as the tree names it only when it fails: where() is no free call
        raise DataError(tree.where(name), e.problem) from None


def _first_image(tree, names, bad_images, skipped, source) -> tuple[int, np.ndarray]:
    """(row, pixels) of the first of `names` that decodes; the rows before it go into `skipped`
    (bad_images "skip") or the first raises ("error")."""
    for row, name in enumerate(names):
        try:
            return row, _decode(tree, name)
        except DataError as e:
            if bad_images == "error":
                raise
            skipped[row] = str(e)
    raise DataError(source, f"none of its {len(names)} images decodes (the first: {skipped[0]})")


def _drop_rows(path, rows: set[int]) -> None:
    """Rewrite the `.npy` at `path` without the rows `rows`, the others in order."""
    images = np.load(path, mmap_mode="r")
    keep = np.array([row for row in range(len(images)) if row not in rows], dtype=np.int64)
    with atomic_path(path) as tmp:
        kept = _reserved_memmap(tmp, (len(keep), *images.shape[1:]))
        for start in range(0, len(keep), CHUNK):
            kept[start:start + CHUNK] = images[keep[start:start + CHUNK]]
        kept.flush()
        del kept, images


_worker: dict = {}  # this process's tree and memory-mapped output


def _open_worker(tree, images_file) -> None:
    _worker["tree"] = tree.reopened()
    _worker["images"] = np.load(images_file, mmap_mode="r+")


def _decode_chunk(job) -> tuple[list[tuple[int, str, str]], tuple[str, str] | None]:
    """Decode one chunk into its rows: the (row, file, problem) of each image that does not
    decode, and (file, problem) for an image whose shape differs from the cache's, else None."""
    start, names = job
    tree, images = _worker["tree"], _worker["images"]
    bad = []
    for row, name in enumerate(names, start):
        try:
            image = _decode(tree, name)
        except DataError as e:
            bad.append((row, e.path, e.problem))
            continue
        if image.shape != images.shape[1:]:
            return bad, (tree.where(name), f"image is {image.shape}, expected {images.shape[1:]} like the first")
        images[row] = image  # a shared mapping: the page cache holds it for every process
    return bad, None


class _InProcess:
    """The Pool interface, run in this process (workers=1) on the caller's tree."""

    def __init__(self, tree, images_file):
        _worker["tree"] = tree
        _worker["images"] = np.load(images_file, mmap_mode="r+")

    def imap_unordered(self, function, jobs):
        return map(function, jobs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _worker.clear()
