"""Write CNTK image map files (format: imgdag.formats.cntk_map) from a layout's records."""
from collections.abc import Iterable
from pathlib import Path

from imgdag.atomic import atomic_open
from imgdag.errors import DataError
from imgdag.layouts.records import ImageRecord


def write_cntk_map(path, records: Iterable[ImageRecord], image_root=None) -> int:
    """Write one map file as the records come; paths are made absolute under `image_root` when
    given. Returns lines written."""
    root = Path(image_root).resolve() if image_root is not None else None
    lines = 0
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        for lines, record in enumerate(records, 1):
            if "\t" in record.path or "\n" in record.path:
                raise DataError(record.path, f"a tab or newline in the path cannot be written to {path}")
            image = str(root / record.path) if root is not None else record.path
            f.write(f"{image}\t{record.label}\n")
    return lines
