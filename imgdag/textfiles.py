"""The one reader of text files (lists, CSVs, annotations, class lists, indexes).

Every text file is read as UTF-8: a leading byte-order mark (as Windows editors write
them) is dropped and CRLF or CR line ends become LF, so such a file reads exactly as its
plain UTF-8/LF twin. Bytes that are not UTF-8 are a DataError naming the file and the line.
"""
import csv
import io
from collections.abc import Iterator
from pathlib import Path

from imgdag.errors import DataError


def decode_text(data: bytes, where) -> str:
    """`data` as text: BOM dropped, line ends made LF; DataError naming `where` and the line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(where, f"line {line}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}; "
                               "expected UTF-8)") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path, expected: str = "a UTF-8 text file") -> str:
    """The text of the file `path`; DataError when it is missing, unreadable or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"missing (expected {expected})")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(path, f"unreadable: {e}") from None
    return decode_text(data, path)


def read_lines(path, expected: str = "a UTF-8 text file") -> Iterator[str]:
    """The lines of `path` without their line ends, one at a time (line i+1 of the file is item
    i); the file is read (and a DataError raised) at the call."""
    return text_lines(read_text(path, expected))


def stream_lines(path, expected: str = "a UTF-8 text file") -> Iterator[str]:
    """The lines of `path` as read_lines gives them, read a block at a time as they are used
    (a list of a million lines is never held whole); a missing file is a DataError at the
    call, bytes that are not UTF-8 one when their line is reached."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"missing (expected {expected})")
    return _streamed_lines(path, expected)


def _streamed_lines(path: Path, expected: str) -> Iterator[str]:
    try:  # utf-8-sig drops a BOM; newline=None reads CRLF and CR as LF, as decode_text
        with open(path, encoding="utf-8-sig", newline=None) as f:
            for line in f:
                yield line[:-1] if line.endswith("\n") else line
    except UnicodeDecodeError:
        read_text(path, expected)  # raises the DataError that names the line
        raise
    except OSError as e:
        raise DataError(path, f"unreadable: {e}") from None


def text_lines(text: str) -> Iterator[str]:
    """Lines of text read by `decode_text`, one at a time (a reader of a million-line list
    holds its entries, not a second list of the lines): split at LF only (str.splitlines also
    splits at form feeds and Unicode separators, which would shift line numbers)."""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        if stop < 0:
            stop = end
        yield text[start:stop]
        start = stop + 1


def csv_rows(text: str) -> list[list[str]]:
    """The rows of CSV text read by `decode_text` or `read_text`."""
    return list(csv.reader(io.StringIO(text)))


def ascii_int(text: str) -> int | None:
    """The integer `text` spells in ASCII digits 0-9, with an optional leading '-'; None for
    any other text (int() also takes '٣', '2_0', '+3' and surrounding spaces)."""
    digits = text[1:] if text[:1] == "-" else text
    return int(text) if digits.isascii() and digits.isdigit() else None  # ASCII: only 0-9 are digits


def ascii_float(text: str) -> float | None:
    """The number `text` spells in ASCII as float() reads it ('1', '-2.5e3', 'nan'), without the
    underscores it also takes; None for any other text (float() also takes '٣' and '1_0')."""
    if not text.isascii() or "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None
