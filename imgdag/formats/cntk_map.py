"""CNTK image map files: `train_map.txt`, `val_map.txt`.

Format (what CNTK's ImageDeserializer reads): UTF-8 text, one image a line,
`<path><TAB><label>\\n`. `path` is relative to the dataset root the records came from, or
absolute when an image root is given; `label` is the image's class index in the sorted
class list written beside the maps as `classes.txt`. Paths may not contain a tab or a
newline.
"""
from pathlib import Path

from imgdag.atomic import atomic_open
from imgdag.errors import DataError
from imgdag.layouts.records import ImageRecord
from imgdag.textfiles import read_lines


def write_cntk_map(path, records: list[ImageRecord], image_root=None) -> int:
    """Write one map file; paths are made absolute under `image_root` when given. Returns lines written."""
    root = Path(image_root).resolve() if image_root is not None else None
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        for record in records:
            if "\t" in record.path or "\n" in record.path:
                raise DataError(record.path, f"a tab or newline in the path cannot be written to {path}")
            image = str(root / record.path) if root is not None else record.path
            f.write(f"{image}\t{record.label}\n")
    return len(records)


def read_cntk_map(path) -> list[tuple[str, int]]:
    """(path, label) rows of a map file."""
    path = Path(path)
    rows = []
    for line_no, line in enumerate(read_lines(path, "a CNTK map file: path<TAB>label lines"), 1):
        image, tab, label = line.rpartition("\t")
        if not tab or not image or not label.isdigit():
            raise DataError(path, f"line {line_no}: expected path<TAB>label, got {line!r}")
        rows.append((image, int(label)))
    return rows
