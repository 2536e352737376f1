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

This module reads (RecordReader) and frames (frame_parts, pack_record: the byte layout above);
imgdag.formats.recordio_writer writes `.rec` + `.idx` files, and imgdag.formats.recordio_packer
packs a `.lst`'s images as im2rec.py does.
"""
import os
import struct
import threading
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from imgdag.errors import DataError
from imgdag.textfiles import ascii_int, stream_lines

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
MAX_RECORD_BYTES = (1 << 29) - 1
_FRAME = struct.Struct("<II")
_IRHEADER = struct.Struct("<IfQQ")


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
    return list(iter_idx(idx_path))


def iter_idx(idx_path) -> Iterator[tuple[int, int]]:
    """read_idx's pairs one at a time, the file read as they are used."""
    last = None
    for number, line in enumerate(stream_lines(idx_path, "an MXNet .idx file: key<TAB>offset lines"), 1):
        fields = line.strip().split("\t")
        if fields == [""]:
            continue
        numbers = [ascii_int(field.strip()) for field in fields]  # MXNet writes %d: ASCII digits
        if len(numbers) != 2 or None in numbers:
            raise DataError(idx_path, f"line {number}: expected key<TAB>offset, got {line.strip()!r}")
        key, offset = numbers
        if last is not None and offset <= last:
            raise DataError(idx_path, f"line {number}: offset {offset} is not after the previous line's "
                                      f"{last} (each line is the next record, in file order)")
        last = offset
        yield key, offset


def scan_index(rec_path) -> list[tuple[int, int]]:
    """(IRHeader id, offset) of every record, read from the `.rec` file itself."""
    return [(_unpack(rec_path, offset, payload).header.id, offset) for offset, payload in _scan(rec_path)]


class RecordReader:
    """Random and sequential access to the image records of a `.rec` file.

    The index comes from `idx_path`, or when that is None from the `.idx` beside the `.rec`
    (same name), or, when there is none, from a scan of the `.rec`. `reader[i]` is the i-th
    record in index order (its key `reader.keys[i]`), `read_at(offset)` the record at a byte
    offset, iteration goes through the file in order. Reads are positioned (os.pread on one
    descriptor), so threads share a reader, and so do processes forked from its owner.
    """

    def __init__(self, rec_path, idx_path=None):
        self.rec_path = Path(rec_path)
        if not self.rec_path.is_file():
            raise DataError(self.rec_path, "no such RecordIO file")
        if idx_path is None and self.rec_path.with_suffix(".idx").is_file():
            idx_path = self.rec_path.with_suffix(".idx")
        self.idx_path = idx_path and Path(idx_path)
        pairs = iter_idx(self.idx_path) if self.idx_path else scan_index(self.rec_path)
        size = self.rec_path.stat().st_size
        # 16 bytes a record (Python ints in lists took about 80): a million-record .rec's index
        self.keys, self.offsets = array("Q"), array("q")
        for key, offset in pairs:
            if not (0 <= offset < size and offset % 4 == 0):
                raise DataError(self.idx_path, f"key {key}: offset {offset} is not a record start inside "
                                               f"{self.rec_path} ({size} bytes; records start at multiples of 4)")
            try:
                self.keys.append(key)
            except OverflowError:
                raise DataError(self.idx_path, f"key {key} is outside 0..2**64-1 (a record id)") from None
            self.offsets.append(offset)
        self._file, self._opening = None, threading.Lock()

    def __len__(self):
        return len(self.offsets)

    def __getitem__(self, i: int) -> Record:
        return self._read_indexed(self.keys[i], self.offsets[i])

    def _read_indexed(self, key: int, offset: int) -> Record:
        try:
            return self.read_at(offset)
        except DataError as e:
            raise DataError(self.idx_path or self.rec_path, f"key {key}: {e}") from None

    def read_at(self, offset: int) -> Record:
        """The record whose first part starts at byte `offset`."""
        found = _read_record(_Cursor(self._descriptor(), offset), self.rec_path, offset)
        if found is None:
            raise DataError(self.rec_path, f"no record at byte offset {offset}: the file ends before it")
        return _unpack(self.rec_path, offset, found[0])

    def label_at(self, offset: int) -> float:
        """The first label of the record at byte `offset`, reading its header only (a record
        split inside its header, or too short, is read whole)."""
        f = _Cursor(self._descriptor(), offset)
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

    def _descriptor(self) -> int:
        with self._opening:
            if self._file is None:
                self._file = open(self.rec_path, "rb", buffering=0)
            return self._file.fileno()

    def close(self):
        """Close the file (reading again reopens it)."""
        with self._opening:
            if self._file is not None:
                self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __getstate__(self):
        return {**self.__dict__, "_file": None, "_opening": None}

    def __setstate__(self, state):
        self.__dict__.update(state, _opening=threading.Lock())


class _Cursor:
    """A file's bytes read from `offset` on with os.pread: no shared file position."""

    def __init__(self, fd: int, offset: int):
        self.fd, self.offset = fd, offset

    def read(self, size: int) -> bytes:
        data = os.pread(self.fd, size, self.offset)
        self.offset += len(data)
        return data
