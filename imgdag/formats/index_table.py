"""CSV index tables: one image a row, with a header, UTF-8, `\\n` line ends.

Tiny ImageNet (`train.csv`, `val.csv`, `test.csv`):
    file,label,wnid,x0,y0,x1,y1
  file: path relative to the dataset root the reader was given; label: class index in
  sorted-WNID order (classes.txt), -1 for unlabelled test images (wnid empty); x0..y1:
  the bounding box (inclusive pixel corners), empty when the image has none.
ILSVRC2012 validation (`val.csv`):
    file,ilsvrc2012_id,wnid,label
  file: image name (or path inside the images folder/tar); ilsvrc2012_id: the devkit's
  synset ID (empty when the table came from Caffe files without a devkit); label: index
  of the WNID in the *model's* class list.
`label` is always the model class index. A `file` may not be absolute nor hold a `..` part.
"""
import csv
from pathlib import Path

from imgdag.atomic import atomic_open
from imgdag.errors import DataError
from imgdag.layouts.records import UNLABELLED, ImageRecord
from imgdag.textfiles import ascii_int, csv_rows, read_text

TINY_COLUMNS = ["file", "label", "wnid", "x0", "y0", "x1", "y1"]
ILSVRC_COLUMNS = ["file", "ilsvrc2012_id", "wnid", "label"]
TINY_IMAGE_SIZE = 64  # every Tiny ImageNet image is 64x64


def check_box(box, where, line_no: int) -> tuple[int, int, int, int]:
    """`box` if 0 <= x0 <= x1 < 64 and 0 <= y0 <= y1 < 64, else a DataError naming the line."""
    x0, y0, x1, y1 = box
    if not (0 <= x0 <= x1 < TINY_IMAGE_SIZE and 0 <= y0 <= y1 < TINY_IMAGE_SIZE):
        size = TINY_IMAGE_SIZE
        raise DataError(where, f"line {line_no}: box {tuple(box)} is not inside the {size}x{size} "
                               f"image (expected 0 <= x0 <= x1 <= {size - 1}, same for y)")
    return tuple(box)


def _write(path, columns: list[str], rows) -> int:
    count = 0
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _read(path, columns: list[str]):
    """(line number, dict row) for each data row; DataError on a wrong header, or on a file that
    is not a relative path inside the root."""
    path = Path(path)
    rows = csv_rows(read_text(path, f"a CSV with header {','.join(columns)}"))
    header = rows[0] if rows else None
    if header != columns:
        raise DataError(path, f"header {header} (expected {','.join(columns)})")
    for line_no, row in enumerate(rows[1:], 2):
        if len(row) != len(columns):
            raise DataError(path, f"line {line_no}: {len(row)} fields (expected {len(columns)})")
        fields = dict(zip(columns, row))
        if fields["file"].startswith("/") or ".." in fields["file"].split("/"):
            raise DataError(path, f"line {line_no}: file {fields['file']!r} leads outside the folder the "
                                  "table's files are in (expected a relative path without '..')")
        yield line_no, fields


def _int(path, line_no: int, column: str, text: str) -> int:
    value = ascii_int(text)
    if value is None:
        raise DataError(path, f"line {line_no}: {column} {text!r} is not an integer")
    return value


def write_tiny_index(path, records: list[ImageRecord]) -> int:
    """Write a Tiny ImageNet index table; returns rows written."""
    def rows():
        for r in records:
            box = r.extras.get("box")
            yield [r.path, r.label, r.wnid, *(box if box else ("", "", "", ""))]
    return _write(path, TINY_COLUMNS, rows())


def read_tiny_index(path) -> list[ImageRecord]:
    records = []
    for line_no, row in _read(path, TINY_COLUMNS):
        corners = [row[c] for c in ("x0", "y0", "x1", "y1")]
        extras = {}
        if any(corners):
            box = tuple(_int(path, line_no, c, row[c]) for c in ("x0", "y0", "x1", "y1"))
            extras["box"] = check_box(box, path, line_no)
        label = _int(path, line_no, "label", row["label"])
        if label < UNLABELLED or (label == UNLABELLED) != (row["wnid"] == ""):
            raise DataError(path, f"line {line_no}: label {label} with wnid {row['wnid']!r} (expected a class "
                                  f"index >= 0 with its WNID, or {UNLABELLED} with none)")
        records.append(ImageRecord(row["file"], label, row["wnid"], extras))
    return records


def write_ilsvrc_val_table(path, records: list[ImageRecord]) -> int:
    """Write an ILSVRC val table; returns rows written."""
    rows = ([r.path, "" if r.extras.get("ilsvrc2012_id") is None else r.extras["ilsvrc2012_id"], r.wnid, r.label]
            for r in records)
    return _write(path, ILSVRC_COLUMNS, rows)


def read_ilsvrc_val_table(path) -> list[ImageRecord]:
    records = []
    for line_no, row in _read(path, ILSVRC_COLUMNS):
        ilsvrc_id = _int(path, line_no, "ilsvrc2012_id", row["ilsvrc2012_id"]) if row["ilsvrc2012_id"] else None
        records.append(ImageRecord(row["file"], _int(path, line_no, "label", row["label"]), row["wnid"],
                                   {"ilsvrc2012_id": ilsvrc_id}))
    return records
