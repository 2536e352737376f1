"""MXNet's `.lst` image list, as written and read by MXNet's tools/im2rec.py.

One line per image: `index<TAB>label<TAB>...<TAB>path`, the index an integer, each label
formatted `%f` (`3.000000`), the path relative to the image root. A reader strips spaces
around each field, so `0 \\t 3 \\t a.jpg` is the same line.
"""
import os
import random
from pathlib import Path
from typing import NamedTuple

from imgdag.atomic import atomic_open
from imgdag.errors import DataError
from imgdag.textfiles import read_lines

IM2REC_EXTS = (".jpeg", ".jpg", ".png")
IM2REC_SHUFFLE_SEED = 100


class LstEntry(NamedTuple):
    """One `.lst` line: record key, label(s), image path relative to the image root."""

    index: int
    labels: tuple[float, ...]
    path: str


def format_lst_line(entry: LstEntry) -> str:
    """The line im2rec's write_list writes for `entry`, newline included."""
    return "%d\t" % entry.index + "".join("%f\t" % label for label in entry.labels) + entry.path + "\n"


def write_lst(path, entries) -> None:
    """Write `entries` to the `.lst` file `path` atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(format_lst_line(entry) for entry in entries)


def read_lst(path) -> list[LstEntry]:
    """Read a `.lst` file; blank lines are skipped, any other malformed line is a DataError."""
    entries = []
    for number, line in enumerate(read_lines(path, "an MXNet .lst file"), 1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.strip().split("\t")]
        if len(fields) < 3:
            raise DataError(path, f"line {number}: expected index<TAB>label(s)<TAB>path, got {line.strip()!r}")
        try:
            entries.append(LstEntry(int(fields[0]), tuple(float(x) for x in fields[1:-1]), fields[-1]))
        except ValueError:
            raise DataError(
                path, f"line {number}: expected an integer index and float labels, got {line.strip()!r}"
            ) from None
    return entries


def list_image_folder(root, exts=IM2REC_EXTS, recursive=False) -> list[LstEntry]:
    """The images under `root` in the order and with the labels of `im2rec.py --list`.

    Not recursive: the image files directly in `root` (sorted by name), all label 0.
    Recursive: a walk of `root` with folders and files sorted by name; each folder that holds
    at least one image gets the next label (0, 1, ...) when its first image is met, so class
    subfolders `cat/`, `dog/` become 0 and 1. A file counts when its lower-cased suffix is in
    `exts`. Indexes follow this order, before any shuffle.
    """
    root = str(root)
    if not os.path.isdir(root):
        raise DataError(root, "expected a folder of images")
    entries = []
    if recursive:
        labels = {}
        for folder, dirs, files in os.walk(root, followlinks=True):
            dirs.sort()
            for name in sorted(files):
                file = os.path.join(folder, name)
                if os.path.splitext(name)[1].lower() in exts and os.path.isfile(file):
                    label = labels.setdefault(folder, len(labels))
                    entries.append(LstEntry(len(entries), (float(label),), os.path.relpath(file, root)))
    else:
        for name in sorted(os.listdir(root)):
            file = os.path.join(root, name)
            if os.path.splitext(name)[1].lower() in exts and os.path.isfile(file):
                entries.append(LstEntry(len(entries), (0.0,), name))
    return entries


def im2rec_lst_files(prefix, entries, shuffle=True, chunks=1, train_ratio=1.0, test_ratio=0.0):
    """The `.lst` files `im2rec.py --list` makes from `entries`: {path: entries}.

    As im2rec: shuffled with `random.seed(100)`, cut into `chunks` (`PREFIX_0.lst`, ...), and,
    when train_ratio < 1, each chunk split into `_test` (first test_ratio), `_train` (next
    train_ratio) and `_val` (the rest, when train_ratio + test_ratio < 1).
    """
    entries = list(entries)
    if shuffle:
        random.Random(IM2REC_SHUFFLE_SEED).shuffle(entries)
    chunk_size = (len(entries) + chunks - 1) // chunks
    files = {}
    for i in range(chunks):
        chunk = entries[i * chunk_size : (i + 1) * chunk_size]
        stem = f"{prefix}_{i}" if chunks > 1 else str(prefix)
        n_train, n_test = int(chunk_size * train_ratio), int(chunk_size * test_ratio)
        if train_ratio == 1.0:
            files[Path(stem + ".lst")] = chunk
            continue
        if test_ratio:
            files[Path(stem + "_test.lst")] = chunk[:n_test]
        if train_ratio + test_ratio < 1.0:
            files[Path(stem + "_val.lst")] = chunk[n_test + n_train :]
        files[Path(stem + "_train.lst")] = chunk[n_test : n_test + n_train]
    return files
