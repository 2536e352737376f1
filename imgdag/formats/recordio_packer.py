"""Pack the images a `.lst` names into a `.rec` + `.idx`, as MXNet's im2rec.py (format:
imgdag.formats.recordio).

Images go through `imgdag.codec` (libjpeg-turbo through simplejpeg where im2rec uses OpenCV's,
OpenCV's own bilinear resize), full-size decodes as im2rec, so pixels agree within a grey level
or two and encoded bytes may differ; with pass_through the image files' bytes are copied and the
`.rec` and `.idx` are byte-identical to `im2rec.py --pass-through --pack-label`.
"""
import os
import threading
from array import array
from collections import Counter, deque
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from imgdag.errors import DataError
from imgdag.faults import fault_point
from imgdag.formats.lst import LstEntry, iter_lst
from imgdag.formats.recordio import IRHeader, pack_record
from imgdag.formats.recordio_writer import RecordWriter
from imgdag.imagecheck import BAD_IMAGES, warn_skipped
from imgdag.pool import process_pool

PACK_CHUNK = 8  # images per task sent to a pack worker
IN_FLIGHT_PER_WORKER = 4 * PACK_CHUNK  # images read, encoded or waiting per pack worker, at most


@dataclass(frozen=True)
class PackOptions:
    """How `pack` turns image files into records; im2rec.py's flags of the same names.

    resize: scale so the shorter side is this many pixels, the other side scaled with integer
        division (0: keep the size; it also enlarges), bilinear as OpenCV's INTER_LINEAR (no
        antialiasing); after center_crop: cut the central square.
    quality: JPEG quality 1-100, or for '.png' the zlib compression level (clipped to 0-9, as
        OpenCV does, so the default 95 means 9).
    encoding: '.jpg' or '.png'.
    color: 1 colour (RGB, alpha dropped), 0 grayscale (a colour JPEG's luma, as OpenCV),
        -1 as stored (alpha kept, except in a JPEG, which cannot hold it). EXIF orientation
        is applied except for -1, as OpenCV's imread.
    pass_through: copy each file's bytes unchanged (no other option applies); each image is
        still checked to decode (imgdag.codec.check_image) unless images_checked.
    images_checked: the step that listed the images already checked them (a map or index
        writer with checks.bad_images): pass-through copies without decoding them again.
    """

    resize: int = 0
    center_crop: bool = False
    quality: int = 95
    encoding: str = ".jpg"
    pass_through: bool = False
    color: int = 1
    images_checked: bool = False

    def __post_init__(self):
        if self.encoding not in (".jpg", ".png"):
            raise ValueError(f"encoding must be '.jpg' or '.png', got {self.encoding!r}")
        if self.color not in (-1, 0, 1):
            raise ValueError(f"color must be -1, 0 or 1, got {self.color!r}")
        if self.resize < 0:
            raise ValueError(f"resize must be >= 0, got {self.resize}")


@dataclass(frozen=True)
class PackSummary:
    """What `pack` did: records written, images skipped per reason (missing, unreadable,
    corrupt); str() is the one-line summary."""

    written: int
    skipped: dict[str, int]
    rec_path: str = ""

    def __str__(self):
        total = self.written + sum(self.skipped.values())
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return f"packed {self.written} of {total} images into {self.rec_path}" + (
            f"; skipped {reasons}" if reasons else ""
        )


def encode_for_record(image_bytes: bytes, source, options: PackOptions) -> bytes:
    """Re-encode one image file's bytes the way im2rec.py does with `options` (not pass_through):
    decode (EXIF-oriented unless color -1), centre square, resize, encode."""
    from imgdag import codec  # here, not at the top: a pass-through copy never loads OpenCV
    if options.color == 1:
        pixels = codec.decode_rgb(image_bytes, source)
    elif options.color == 0:
        pixels = codec.decode_gray(image_bytes, source)
    else:
        pixels = codec.decode_stored(image_bytes, source)
    if options.center_crop:
        pixels = codec.center_square(pixels)
    if options.resize:
        pixels = codec.resize_shorter(pixels, options.resize)
    if options.encoding == ".jpg":
        return codec.encode_jpeg(pixels, options.quality)
    return codec.encode_png(pixels, options.quality)


def _open_failure(e: OSError) -> tuple[str, str]:
    """(skip reason, problem) of an image file that cannot be opened or read."""
    if isinstance(e, FileNotFoundError):
        return "missing", "no such image file"
    return "unreadable", f"cannot read the image file: {e.strerror or e}"


def _copy_image(writer: RecordWriter, entry: LstEntry, path: str):
    """Append the record of `entry` with the bytes of the image file `path` unchanged: None, or
    (skip reason, problem) when the file cannot be opened."""
    try:
        image = open(path, "rb", buffering=0)
    except OSError as e:
        return _open_failure(e)
    with image:
        writer.write_from_file(entry.index, _record_head(entry), image)
    return None


def _record_head(entry: LstEntry) -> bytes:
    """The IRHeader (and packed labels) that start the record of a `.lst` entry."""
    if len(entry.labels) == 1:
        return pack_record(IRHeader(0, entry.labels[0], entry.index, 0), None, b"")
    return pack_record(IRHeader(0, 0.0, entry.index, 0), entry.labels, b"")


def _pack_entry(entry: LstEntry, image_root: str, options: PackOptions):
    """(payload, None) for one `.lst` entry, or (None, (skip reason, problem)). With
    pass_through, (None, None) once the image is checked (at once with images_checked): the
    caller copies the file, so that its bytes do not travel back from a worker process."""
    if options.pass_through and options.images_checked:
        return None, None
    path = os.path.join(image_root, entry.path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, _open_failure(e)
    try:
        if options.pass_through:
            from imgdag import codec  # as in encode_for_record

            codec.check_image(data, path)
            return None, None
        return _record_head(entry) + encode_for_record(data, path, options), None
    except DataError as e:
        return None, ("corrupt", e.problem)


def _check_lst(lst_path, image_root) -> int:
    """Read the whole `.lst` once before packing (every line checked, nothing kept but the
    indexes, 8 bytes an entry): its entry count; DataError for a malformed line or an index
    listed twice (each becomes a record key, which must be unique)."""
    indexes = array("Q", (entry.index for entry in iter_lst(lst_path, image_root)))
    keys = np.frombuffer(indexes, np.uint64)
    ordered = np.sort(keys)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if len(repeated):
        first = keys[np.isin(keys, repeated)][0]  # in the file's order
        raise DataError(lst_path, f"index {first} appears more than once ({len(repeated)} repeated "
                                  "indexes): each becomes a record key, which must be unique")
    return len(keys)


def _encoded(entries, encode, num_workers: int, stack: ExitStack):
    """(entry, encode(entry)) for each of `entries`, in order; with `num_workers` > 1 encoded
    by that many processes, at most IN_FLIGHT_PER_WORKER entries each in flight (memory does
    not grow with the list)."""
    if num_workers <= 1:
        yield from ((entry, encode(entry)) for entry in entries)
        return
    pool = stack.enter_context(process_pool(num_workers))
    slots, in_flight = threading.Semaphore(num_workers * IN_FLIGHT_PER_WORKER), deque()
    done = threading.Event()
    # on an error, unblock the pool's task feeder so that the pool can terminate
    stack.callback(lambda: (done.set(), slots.release()))

    def feed():  # runs in the pool's task-feeding thread
        for entry in entries:
            slots.acquire()
            if done.is_set():
                return
            in_flight.append(entry)
            yield entry

    for result in pool.imap(encode, feed(), chunksize=PACK_CHUNK):
        slots.release()
        yield in_flight.popleft(), result


def pack(lst_path, image_root, rec_path, idx_path, options=PackOptions(), num_workers=1,
         bad_images="skip") -> PackSummary:
    """Pack the images a `.lst` names (relative to `image_root`, never outside it) into
    `rec_path` + `idx_path`.

    Records keep the `.lst` order, keyed by its index (the IRHeader id), one label as
    header.label or several packed after the header (flag = their count), as
    `im2rec.py --pack-label`. The whole `.lst` is checked before the first image is read,
    then read again as packing goes: memory does not grow with the list. Images that are
    missing, unreadable or do not decode (corrupt) are skipped, counted by reason and each
    named in a warning; with bad_images "error" (imgdag.imagecheck) the first stops packing
    with a DataError naming it. With `num_workers` > 1, that many processes read and check or
    encode, at most IN_FLIGHT_PER_WORKER images each in flight.
    """
    if bad_images not in BAD_IMAGES:
        raise ValueError(f"bad_images must be one of {BAD_IMAGES}, got {bad_images!r}")
    count = _check_lst(lst_path, image_root)
    encode = partial(_pack_entry, image_root=str(image_root), options=options)
    skipped, skipped_files, written = Counter(), [], 0
    copy_only = options.pass_through and options.images_checked  # no work for worker processes
    with ExitStack() as stack:
        results = _encoded(iter_lst(lst_path, image_root), encode, 1 if copy_only else num_workers, stack)
        writer = stack.enter_context(RecordWriter(rec_path, idx_path))
        for entry, (payload, skip) in tqdm(results, total=count, desc=f"pack {Path(rec_path).name}",
                                           unit="img", mininterval=1):
            path = os.path.join(image_root, entry.path)
            if payload is not None:
                writer.write(entry.index, payload)
            elif skip is None:  # pass-through, checked: copy the file's bytes
                skip = _copy_image(writer, entry, path)
            if skip is not None:
                if bad_images == "error":
                    raise DataError(path, skip[1])
                skipped[skip[0]] += 1
                skipped_files.append(f"{path} ({skip[0]}: {skip[1]})")
            else:
                written += 1
                fault_point("pack")
        if written + skipped.total() != count:  # before the writer's rename: no .rec is left
            raise DataError(lst_path, f"changed while packing: {count} entries when checked, "
                                      f"{written + skipped.total()} when packed")
    warn_skipped(lst_path, skipped_files)
    return PackSummary(written, dict(skipped), str(rec_path))
