"""CNTK image map files: `train_map.txt`, `val_map.txt`.

Format (what CNTK's ImageDeserializer reads): UTF-8 text, one image a line,
`<path><TAB><label>\\n`. `path` is relative to the dataset root the records came from, or
absolute when an image root is given; `label` is the image's class index in the sorted
class list written beside the maps as `classes.txt`. Paths may not contain a tab or a
newline.
This module reads maps; imgdag.formats.cntk_map_writer writes them.
"""
from collections.abc import Iterator
from pathlib import Path

from imgdag.errors import DataError
from imgdag.textfiles import ascii_int, stream_lines


def read_cntk_map(path) -> list[tuple[str, int]]:
    """(path, label) rows of a map file."""
    return list(iter_cntk_map(path))


def iter_cntk_map(path) -> Iterator[tuple[str, int]]:
    """(path, label) rows of a map file, one at a time (the file read as they are used)."""
    path = Path(path)
    for line_no, line in enumerate(stream_lines(path, "a CNTK map file: path<TAB>label lines"), 1):
        image, tab, label = line.rpartition("\t")
        number = ascii_int(label)
        if not tab or not image or number is None or number < 0:
            raise DataError(path, f"line {line_no}: expected path<TAB>label, got {line!r}")
        yield image, number
