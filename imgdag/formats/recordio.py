"""MXNet RecordIO (`.rec` + `.idx`), byte-compatible with MXNet 1.9.1 and its im2rec.py.

The format, all integers little-endian:

Record framing (dmlc-core's RecordIOWriter). A `.rec` file is a sequence of parts:

    [u32 magic 0xced7230a][u32 lrec][data: length bytes][zero pad to a multiple of 4]
    lrec = cflag << 29 | length        (so a record is shorter than 2**29 bytes)

A record whose payload holds the magic word at a 4-byte-aligned offset is split there, so
that a reader resynchronising on the magic never lands inside a record: the aligned magic
words are dropped and the pieces between them become parts with cflag 1 (first), 2
(middle) and 3 (last); an unsplit record is one part with cflag 0. Only the last part can
need padding (the cut points are aligned). A reader joins the parts, putting the magic back
between them. Every record starts at a multiple of 4 in the file.

Image record payload (mxnet.recordio.pack):

    IRHeader <IfQQ: u32 flag, f32 label, u64 id, u64 id2       (24 bytes)
    if flag > 0: flag x f32 labels (and then header.label is 0)
    image bytes (JPEG or PNG)

im2rec writes id = the `.lst` index, id2 = 0, flag = 0 with one label, or flag = the number
of labels with --pack-label.

Index (`.idx`, mxnet.recordio.MXIndexedRecordIO): one text line per record,
`key<TAB>byte offset of its first part`, in the order written; im2rec's key is the `.lst`
index.

Packing (`pack`) follows im2rec.py's options: see PackOptions. Images go through
`imgdag.codec` (libjpeg-turbo through simplejpeg where im2rec uses OpenCV's, OpenCV's own
bilinear resize), full-size decodes as im2rec, so pixels agree within a grey level or two and
encoded bytes may differ; with pass_through the image files' bytes are copied and the `.rec` and `.idx` are
byte-identical to `im2rec.py --pass-through --pack-label`.
"""
import os
import struct
import threading
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from imgdag import codec
from imgdag.atomic import atomic_path
from imgdag.errors import DataError
from imgdag.faults import fault_point
from imgdag.formats.lst import LstEntry, read_lst
from imgdag.imagecheck import BAD_IMAGES, warn_skipped
from imgdag.pool import process_pool
from imgdag.textfiles import read_lines

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
MAX_RECORD_BYTES = (1 << 29) - 1
_FRAME = struct.Struct("<II")
_IRHEADER = struct.Struct("<IfQQ")
PACK_CHUNK = 8  # images per task sent to a pack worker
IN_FLIGHT_PER_WORKER = 4 * PACK_CHUNK  # images read, encoded or waiting per pack worker, at most


class IRHeader(NamedTuple):
    """The 24-byte image record header: flag (label count when > 0), label, id, id2."""

    flag: int
    label: float
    id: int
    id2: int


class Record(NamedTuple):
    """One image record: its header, its labels (the `flag` packed labels, else [header.label]),
    and the encoded image bytes."""

    header: IRHeader
    labels: np.ndarray
    image: bytes


def pack_record(header: IRHeader, labels, image_bytes: bytes) -> bytes:
    """An image record payload, as mxnet.recordio.pack.

    With `labels` None, header.label is the one label and flag is written 0; otherwise
    flag = len(labels), header.label 0 and the labels follow the header as float32.
    """
    if labels is None:
        return _IRHEADER.pack(0, header.label, header.id, header.id2) + image_bytes
    labels = np.asarray(labels, dtype="<f4").ravel()
    return _IRHEADER.pack(labels.size, 0.0, header.id, header.id2) + labels.tobytes() + image_bytes


def unpack_record(payload: bytes) -> Record:
    """Split an image record payload into header, labels and image bytes (ValueError if short)."""
    if len(payload) < _IRHEADER.size:
        raise ValueError(f"image record of {len(payload)} bytes is shorter than its 24-byte header")
    header = IRHeader(*_IRHEADER.unpack_from(payload))
    if header.flag == 0:
        return Record(header, np.array([header.label], dtype=np.float32), payload[_IRHEADER.size :])
    end = _IRHEADER.size + 4 * header.flag
    if len(payload) < end:
        raise ValueError(f"image record of {len(payload)} bytes is shorter than its {header.flag} labels")
    labels = np.frombuffer(payload, dtype="<f4", count=header.flag, offset=_IRHEADER.size).astype(np.float32)
    return Record(header, labels, payload[end:])


def frame_parts(payload: bytes) -> list:
    """The pieces dmlc::RecordIOWriter::WriteRecord writes for one record payload, in order
    (joined, they are the record's bytes)."""
    if len(payload) > MAX_RECORD_BYTES:
        raise ValueError(f"a RecordIO record must be under 2**29 bytes, got {len(payload)}")
    # only a magic word at a 4-byte-aligned offset splits the record: compare whole words
    words = np.frombuffer(payload, dtype="<u4", count=len(payload) // 4)
    parts, start = [], 0
    for at in (np.flatnonzero(words == MAGIC) * 4).tolist():
        parts.append(_FRAME.pack(MAGIC, (1 if start == 0 else 2) << 29 | (at - start)))
        parts.append(payload[start:at])
        start = at + 4
    parts.append(_FRAME.pack(MAGIC, (3 if start else 0) << 29 | (len(payload) - start)))
    parts.append(payload[start:] if start else payload)
    parts.append(b"\0" * (-len(payload) % 4))
    return parts


class RecordWriter:
    """Write records to `rec_path` and `key<TAB>offset` lines to `idx_path` (None: no index).

    A context manager: the files are written to temporary siblings and renamed into place
    when the block ends without an exception.
    """

    def __init__(self, rec_path, idx_path=None):
        self.rec_path, self.idx_path = Path(rec_path), idx_path and Path(idx_path)
        self._stack = ExitStack()
        self._rec = self._idx = None

    def __enter__(self):
        # exits run last-in first-out: each file is closed before its rename, the .rec renamed
        # before the .idx, so a new .idx never sits beside an old .rec
        with ExitStack() as stack:
            if self.idx_path:
                self._idx = open(stack.enter_context(atomic_path(self.idx_path)), "w", newline="\n")
                stack.callback(self._idx.close)
            self._rec = open(stack.enter_context(atomic_path(self.rec_path)), "wb")
            stack.callback(self._rec.close)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info):
        return self._stack.__exit__(*exc_info)

    def write(self, key: int, payload: bytes) -> int:
        """Append one record; returns its byte offset (written to the index under `key`)."""
        offset = self._rec.tell()
        try:
            parts = frame_parts(payload)
        except ValueError as e:
            raise DataError(self.rec_path, f"record {key}: {e}") from None
        self._rec.writelines(parts)
        if self._idx:
            self._idx.write(f"{int(key)}\t{offset}\n")
        return offset


def _read_part_header(f, path, offset):
    """(cflag, length) of the part at `offset`, or None at the end of the file."""
    frame = f.read(_FRAME.size)
    if not frame:
        return None
    if len(frame) < _FRAME.size:
        raise DataError(path, f"truncated: the file ends inside the record header at byte offset {offset}")
    magic, lrec = _FRAME.unpack(frame)
    if magic != MAGIC:
        raise DataError(path, f"bad magic 0x{magic:08x} at byte offset {offset}, expected 0x{MAGIC:08x}")
    return lrec >> 29, lrec & MAX_RECORD_BYTES


def _read_record(f, path, offset):
    """(payload, next offset) of the record whose first part is at `offset` in the open file
    `f` (positioned there), or None at the end of the file."""
    pieces, cflag = [], None
    while cflag not in (0, 3):
        part = _read_part_header(f, path, offset)
        if part is None:
            if pieces:
                raise DataError(path, f"truncated: the file ends inside a split record, at byte offset {offset}")
            return None
        new_cflag, length = part
        if new_cflag not in ((0, 1) if cflag is None else (2, 3)):
            expected = "0 or 1 (a record start)" if cflag is None else "2 or 3 (a continuation)"
            raise DataError(path, f"part at byte offset {offset} has cflag {new_cflag}, expected {expected}")
        cflag = new_cflag
        padded = length + (-length % 4)
        data = f.read(padded)
        if len(data) < padded:
            raise DataError(
                path,
                f"truncated: the record part at byte offset {offset} needs {padded} bytes, "
                f"the file has {len(data)} left",
            )
        pieces.append(data[:length])
        offset += _FRAME.size + padded
    return MAGIC_BYTES.join(pieces), offset


def _scan(path):
    """(offset, payload) of every record of the `.rec` file `path`, in file order."""
    with open(path, "rb") as f:
        offset = 0
        while (found := _read_record(f, path, offset)) is not None:
            payload, next_offset = found
            yield offset, payload
            offset = next_offset


def _unpack(path, offset, payload) -> Record:
    try:
        return unpack_record(payload)
    except ValueError as e:
        raise DataError(path, f"record at byte offset {offset}: {e}") from None


def read_idx(idx_path) -> list[tuple[int, int]]:
    """The (key, offset) lines of a `.idx` file; each offset after the one before (a repeated
    or backward offset would read one record twice): DataError naming the line."""
    pairs = []
    for number, line in enumerate(read_lines(idx_path, "an MXNet .idx file: key<TAB>offset lines"), 1):
        fields = line.strip().split("\t")
        if fields == [""]:
            continue
        try:
            key, offset = fields
            key, offset = int(key), int(offset)
        except ValueError:
            raise DataError(idx_path, f"line {number}: expected key<TAB>offset, got {line.strip()!r}") from None
        if pairs and offset <= pairs[-1][1]:
            raise DataError(idx_path, f"line {number}: offset {offset} is not after the previous line's "
                                      f"{pairs[-1][1]} (each line is the next record, in file order)")
        pairs.append((key, offset))
    return pairs


def scan_index(rec_path) -> list[tuple[int, int]]:
    """(IRHeader id, offset) of every record, read from the `.rec` file itself."""
    return [(_unpack(rec_path, offset, payload).header.id, offset) for offset, payload in _scan(rec_path)]


def rebuild_index(rec_path, idx_path) -> int:
    """Write the `.idx` of `rec_path` (keys are the records' IRHeader ids); returns the count."""
    pairs = scan_index(rec_path)
    with atomic_path(idx_path) as tmp:
        Path(tmp).write_text("".join(f"{key}\t{offset}\n" for key, offset in pairs), newline="\n")
    return len(pairs)


class RecordReader:
    """Random and sequential access to the image records of a `.rec` file.

    The index comes from `idx_path`, or when that is None from the `.idx` beside the `.rec`
    (same name), or, when there is none, from a scan of the `.rec`. `reader[i]` is the i-th
    record in index order, `read_key(key)` the record indexed under `key` (the last one when
    a key repeats, as MXNet), iteration goes through the file in order. Safe to use after
    fork (a new process opens its own file handle), so it fits DataLoader workers.
    """

    def __init__(self, rec_path, idx_path=None):
        self.rec_path = Path(rec_path)
        if not self.rec_path.is_file():
            raise DataError(self.rec_path, "no such RecordIO file")
        if idx_path is None and self.rec_path.with_suffix(".idx").is_file():
            idx_path = self.rec_path.with_suffix(".idx")
        self.idx_path = idx_path and Path(idx_path)
        pairs = read_idx(self.idx_path) if self.idx_path else scan_index(self.rec_path)
        size = self.rec_path.stat().st_size
        for key, offset in pairs:
            if not (0 <= offset < size and offset % 4 == 0):
                raise DataError(self.idx_path, f"key {key}: offset {offset} is not a record start inside "
                                               f"{self.rec_path} ({size} bytes; records start at multiples of 4)")
        self.keys = [key for key, _ in pairs]
        self.offsets = [offset for _, offset in pairs]
        self._offset_of_key = dict(pairs)
        self._file, self._pid = None, None

    def __len__(self):
        return len(self.offsets)

    def __getitem__(self, i: int) -> Record:
        return self._read_indexed(self.keys[i], self.offsets[i])

    def read_key(self, key: int) -> Record:
        """The record indexed under `key`."""
        if key not in self._offset_of_key:
            raise KeyError(f"{self.idx_path or self.rec_path}: no record with key {key}")
        return self._read_indexed(key, self._offset_of_key[key])

    def _read_indexed(self, key: int, offset: int) -> Record:
        try:
            return self.read_at(offset)
        except DataError as e:
            raise DataError(self.idx_path or self.rec_path, f"key {key}: {e}") from None

    def read_at(self, offset: int) -> Record:
        """The record whose first part starts at byte `offset`."""
        f = self._open()
        f.seek(offset)
        found = _read_record(f, self.rec_path, offset)
        if found is None:
            raise DataError(self.rec_path, f"no record at byte offset {offset}: the file ends before it")
        return _unpack(self.rec_path, offset, found[0])

    def label_at(self, offset: int) -> float:
        """The first label of the record at byte `offset`, reading its header only (a record
        split inside its header, or too short, is read whole)."""
        f = self._open()
        f.seek(offset)
        part = _read_part_header(f, self.rec_path, offset)
        if part is not None and part[0] in (0, 1):
            head = f.read(min(part[1], _IRHEADER.size + 4))
            if len(head) >= _IRHEADER.size:
                flag, label = _IRHEADER.unpack_from(head)[:2]
                if flag == 0:
                    return label
                if len(head) == _IRHEADER.size + 4:
                    return struct.unpack_from("<f", head, _IRHEADER.size)[0]
        return float(self.read_at(offset).labels[0])

    def __iter__(self):
        for offset, payload in _scan(self.rec_path):
            yield _unpack(self.rec_path, offset, payload)

    def _open(self):
        if self._pid != os.getpid():
            self._file, self._pid = open(self.rec_path, "rb"), os.getpid()
        return self._file

    def close(self):
        """Close the file handle (reading again reopens it)."""
        if self._file is not None:
            self._file.close()
        self._file = self._pid = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __getstate__(self):
        return {**self.__dict__, "_file": None, "_pid": None}


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


def _read_after(path, head: bytes) -> bytearray:
    """`head` followed by the bytes of the file `path`, read straight into one buffer."""
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        payload = bytearray(len(head) + size)
        payload[: len(head)] = head
        view, at = memoryview(payload), len(head)
        while at < len(payload) and (got := f.readinto(view[at:])):
            at += got
    if at != len(payload):
        raise OSError(f"{path} changed size while read")
    return payload


def _record_head(entry: LstEntry) -> bytes:
    """The IRHeader (and packed labels) that start the record of a `.lst` entry."""
    if len(entry.labels) == 1:
        return pack_record(IRHeader(0, entry.labels[0], entry.index, 0), None, b"")
    return pack_record(IRHeader(0, 0.0, entry.index, 0), entry.labels, b"")


def _pack_entry(entry: LstEntry, image_root: str, options: PackOptions):
    """(payload, None) for one `.lst` entry, or (None, (skip reason, problem)). With
    pass_through, (None, None) once the image is checked: the caller copies the file, so that
    its bytes do not travel back from a worker process."""
    path = os.path.join(image_root, entry.path)
    if options.pass_through and options.images_checked:
        return (None, None) if os.path.isfile(path) else (None, ("missing", "no such image file"))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, ("missing", "no such image file")
    except OSError as e:
        return None, ("unreadable", f"cannot read the image file: {e.strerror or e}")
    try:
        if options.pass_through:
            codec.check_image(data, path)
            return None, None
        return _record_head(entry) + encode_for_record(data, path, options), None
    except DataError as e:
        return None, ("corrupt", e.problem)


def _bounded(entries, slots: threading.Semaphore):
    """`entries`, each taken only when one of the in-flight slots is free."""
    for entry in entries:
        slots.acquire()
        yield entry


def pack(lst_path, image_root, rec_path, idx_path, options=PackOptions(), num_workers=1,
         bad_images="skip") -> PackSummary:
    """Pack the images a `.lst` names (relative to `image_root`, never outside it) into
    `rec_path` + `idx_path`.

    Records keep the `.lst` order, keyed by its index (the IRHeader id), one label as
    header.label or several packed after the header (flag = their count), as
    `im2rec.py --pack-label`. Images that are missing, unreadable or do not decode (corrupt)
    are skipped, counted by reason and each named in a warning; with bad_images "error"
    (imgdag.imagecheck) the first stops packing with a DataError naming it. With `num_workers`
    > 1, that many processes read and check or encode, at most IN_FLIGHT_PER_WORKER images each
    in flight, so memory does not grow with the dataset.
    """
    if bad_images not in BAD_IMAGES:
        raise ValueError(f"bad_images must be one of {BAD_IMAGES}, got {bad_images!r}")
    entries = read_lst(lst_path, image_root)
    repeated = [index for index, n in Counter(e.index for e in entries).items() if n > 1]
    if repeated:
        raise DataError(lst_path, f"index {repeated[0]} appears more than once ({len(repeated)} repeated "
                                  "indexes): each becomes a record key, which must be unique")
    encode = partial(_pack_entry, image_root=str(image_root), options=options)
    skipped, skipped_files, written = Counter(), [], 0
    copy_only = options.pass_through and options.images_checked  # no work for worker processes
    with ExitStack() as stack:
        if num_workers > 1 and not copy_only:
            pool = stack.enter_context(process_pool(num_workers))
            slots = threading.Semaphore(num_workers * IN_FLIGHT_PER_WORKER)
            # on an error, unblock the pool's task feeder so that the pool can terminate
            stack.callback(slots.release, len(entries) + 1)
            results = pool.imap(encode, _bounded(entries, slots), chunksize=PACK_CHUNK)
        else:
            slots, results = None, map(encode, entries)
        writer = stack.enter_context(RecordWriter(rec_path, idx_path))
        for entry, (payload, skip) in tqdm(
            zip(entries, results, strict=True), total=len(entries), desc=f"pack {Path(rec_path).name}",
            unit="img", mininterval=1,
        ):
            if slots:
                slots.release()
            path = os.path.join(image_root, entry.path)
            if payload is None and skip is None:  # pass-through, checked: copy the file's bytes
                payload = _read_after(path, _record_head(entry))
            if payload is None:
                if bad_images == "error":
                    raise DataError(path, skip[1])
                skipped[skip[0]] += 1
                skipped_files.append(f"{path} ({skip[0]}: {skip[1]})")
            else:
                writer.write(entry.index, payload)
                written += 1
                fault_point("pack")
    warn_skipped(lst_path, skipped_files)
    return PackSummary(written, dict(skipped), str(rec_path))
