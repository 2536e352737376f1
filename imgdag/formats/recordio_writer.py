"""Write MXNet RecordIO files: `.rec` records and their `.idx` (format: imgdag.formats.recordio)."""
import os
from contextlib import ExitStack
from pathlib import Path

from imgdag.atomic import atomic_open, atomic_path
from imgdag.errors import DataError
from imgdag.formats.recordio import frame_parts, scan_index


class RecordWriter:
    """Write records to `rec_path` and `key<TAB>offset` lines to `idx_path` (None: no index).

    A context manager: the files are written to temporary siblings and renamed into place
    when the block ends without an exception.
    """

    def __init__(self, rec_path, idx_path=None):
        self.rec_path, self.idx_path = Path(rec_path), idx_path and Path(idx_path)
        self._stack = ExitStack()
        self._rec = self._idx = None
        self._buffer = bytearray()  # write_from_file's, reused from record to record

    def __enter__(self):
        # exits run last-in first-out: each file is closed before its rename, the .rec renamed
        # before the .idx, so a new .idx never sits beside an old .rec
        with ExitStack() as stack:
            if self.idx_path:
                self._idx = stack.enter_context(atomic_open(self.idx_path, "w", newline="\n"))
            self._rec = stack.enter_context(atomic_open(self.rec_path, "wb"))
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

    def write_from_file(self, key: int, head: bytes, file) -> int:
        """Append one record whose payload is `head` followed by the bytes of the open binary
        `file` (an image copied unchanged); returns its byte offset. The bytes go through one
        buffer that every call reuses."""
        size = len(head) + os.fstat(file.fileno()).st_size
        if len(self._buffer) < size:
            self._buffer = bytearray(size)
        with memoryview(self._buffer)[:size] as payload:
            payload[: len(head)] = head
            at = len(head)
            while at < size and (got := file.readinto(payload[at:])):
                at += got
            if at != size:
                raise OSError(f"{file.name} changed size while read")
            return self.write(key, payload)


def rebuild_index(rec_path, idx_path) -> int:
    """Write the `.idx` of `rec_path` (keys are the records' IRHeader ids); returns the count."""
    pairs = scan_index(rec_path)
    with atomic_path(idx_path) as tmp:
        Path(tmp).write_text("".join(f"{key}\t{offset}\n" for key, offset in pairs), newline="\n")
    return len(pairs)
