"""MXNet's `.lst` image list, as written and read by MXNet's tools/im2rec.py.

One line per image: `index<TAB>label<TAB>...<TAB>path`, the index an integer, each label
formatted `%f` (`3.000000`), the path relative to the image root. A reader strips spaces
around each field, so `0 \\t 3 \\t a.jpg` is the same line. Reading checks what packing
relies on: the index fits the record id (0..2**64-1), a line's one label is a class label, a
whole number that a float32 holds exactly (-1 marks unlabelled), several labels (packed as
`im2rec.py --pack-label`: boxes, scores) are finite numbers a float32 holds, and, given the
image root, every path stays inside it (no `..` escape, no absolute path elsewhere).
"""
import os
import random
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from imgdag.atomic import atomic_open
from imgdag.errors import DataError
from imgdag.textfiles import ascii_float, ascii_int, stream_lines

IM2REC_EXTS = (".jpeg", ".jpg", ".png")
IM2REC_SHUFFLE_SEED = 100
MAX_INDEX = 2**64 - 1  # the record id is a u64
MAX_CLASS = 2**24  # integers a float32 holds exactly
MAX_FLOAT32 = 3.4028234663852886e38


class LstEntry(NamedTuple):
    """One `.lst` line: record key, label(s), image path relative to the image root."""

    index: int
    labels: tuple[float, ...]
    path: str


def format_lst_line(entry: LstEntry) -> str:
    """The line im2rec's write_list writes for `entry`, newline included."""
    return "%d\t" % entry.index + "".join("%f\t" % label for label in entry.labels) + entry.path + "\n"


def write_lst(path, entries) -> int:
    """Write `entries` (a list, or any iterable: written as it goes) to the `.lst` file `path`
    atomically; how many."""
    count = 0
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        for count, entry in enumerate(entries, 1):
            f.write(format_lst_line(entry))
    return count


def read_lst(path, image_root=None) -> list[LstEntry]:
    """Read a `.lst` file; blank lines are skipped, any other malformed line is a DataError
    naming the line. With `image_root`, a path that leads outside it is a DataError too."""
    return list(iter_lst(path, image_root))


def iter_lst(path, image_root=None) -> Iterator[LstEntry]:
    """read_lst's entries one at a time, the file read as they are used (memory does not grow
    with the list); a malformed line is a DataError when it is reached."""
    class_labels = {}  # a class label's text -> its one tuple: checked once, shared by its lines
    root = os.path.abspath(image_root) if image_root is not None else None
    for number, line in enumerate(stream_lines(path, "an MXNet .lst file"), 1):
        fields = line.split("\t")
        labels = class_labels.get(fields[1]) if len(fields) == 3 else None
        if labels is None or not fields[2].strip():  # not one class label met before: check all
            if not line.strip():
                continue
            fields = [field.strip() for field in line.strip().split("\t")]
            labels = _checked_labels(path, number, line, fields)
            if len(labels) == 1:
                labels = class_labels.setdefault(fields[1], labels)
        index = ascii_int(fields[0].strip())
        if index is None:  # im2rec writes %d: ASCII digits (its int() would take '٣' and '1_0')
            raise DataError(path, f"line {number}: expected an integer index and numeric labels, got {line.strip()!r}")
        if not 0 <= index <= MAX_INDEX:
            raise DataError(path, f"line {number}: index {index} is outside 0..2**64-1 (a record id)")
        image = fields[-1].strip()
        if root is not None and not _inside(root, image):
            raise DataError(path, f"line {number}: path {image!r} is outside the image root {image_root}")
        yield LstEntry(index, labels, image)


def _checked_labels(path, number: int, line: str, fields: list[str]) -> tuple[float, ...]:
    """The labels of `.lst` line `number` (`fields`: its stripped fields); DataError unless
    there is a path after them and they are one integer class label or finite float32s."""
    if len(fields) < 3:
        raise DataError(path, f"line {number}: expected index<TAB>label(s)<TAB>path, got {line.strip()!r}")
    labels = tuple(ascii_float(x) for x in fields[1:-1])
    if None in labels:
        raise DataError(path, f"line {number}: expected an integer index and numeric labels, got {line.strip()!r}")
    if len(labels) == 1 and not (labels[0].is_integer() and abs(labels[0]) <= MAX_CLASS):
        raise DataError(path, f"line {number}: label {labels[0]:g} is not an integer class label "
                              f"(-{MAX_CLASS}..{MAX_CLASS})")
    if not all(abs(label) <= MAX_FLOAT32 for label in labels):  # False for nan
        raise DataError(path, f"line {number}: labels {fields[1:-1]} are not all finite float32 numbers")
    return labels


def _inside(root: str, path: str) -> bool:
    """Whether `path` (relative to `root`, an absolute path, or absolute) names a file under
    `root`, by its spelling (symlinked folders inside the root are followed as the packer
    follows them)."""
    parts = path.split("/")
    if not path.startswith("/") and ".." not in parts and parts[-1] not in ("", "."):
        return True  # relative, never climbing, naming a file: the common case, without building the path
    target = os.path.abspath(os.path.join(root, path))
    return target != root and os.path.commonpath([root, target]) == root


def list_image_folder(root, exts=IM2REC_EXTS, recursive=False) -> list[LstEntry]:
    """The images under `root` in the order and with the labels of `im2rec.py --list`
    (`iter_image_folder`), as a list."""
    return list(iter_image_folder(root, exts, recursive))


def iter_image_folder(root, exts=IM2REC_EXTS, recursive=False, passed_over: Counter | None = None) -> Iterator[LstEntry]:
    """The images under `root` in the order and with the labels of `im2rec.py --list`, one at
    a time as the walk meets them.

    Not recursive: the image files directly in `root` (sorted by name), all label 0.
    Recursive: a walk of `root` with folders and files sorted by name; each folder that holds
    at least one image gets the next label (0, 1, ...) when its first image is met, so class
    subfolders `cat/`, `dog/` become 0 and 1. A file counts when its lower-cased suffix is in
    `exts`. Indexes follow this order, before any shuffle. With `passed_over`, each file not
    listed is counted there under its lower-cased suffix, or as a non-regular file.
    """
    root = str(root)
    if not os.path.isdir(root):
        raise DataError(root, "expected a folder of images")
    count = 0
    if recursive:
        labels = {}
        for folder, dirs, files in os.walk(root, followlinks=True):
            dirs.sort()
            for name in sorted(files):
                file = os.path.join(folder, name)
                if _listed(file, exts, passed_over):
                    label = labels.setdefault(folder, (float(len(labels)),))  # one tuple per folder
                    yield LstEntry(count, label, _utf8(os.path.relpath(file, root), root))
                    count += 1
    else:
        for name in sorted(os.listdir(root)):
            file = os.path.join(root, name)
            if _listed(file, exts, passed_over):
                yield LstEntry(count, (0.0,), _utf8(name, root))
                count += 1


def _listed(file: str, exts, passed_over: Counter | None) -> bool:
    """Whether iter_image_folder lists `file`: a regular file with a suffix of `exts`. If not, it
    is counted in `passed_over` (when given)."""
    suffix = os.path.splitext(file)[1].lower()
    if suffix in exts and os.path.isfile(file):
        return True
    if os.path.isdir(file):  # a folder os.listdir gave (not recursive)
        return False
    if passed_over is not None:
        passed_over["special files named like images" if suffix in exts
                    else f"files named *{suffix}" if suffix else "files without a suffix"] += 1
    return False


def _utf8(name: str, root) -> str:
    """`name`, or a DataError naming it when it is not UTF-8 (a `.lst` is UTF-8 text)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(os.path.join(root, name), "the file name is not UTF-8 (a .lst is UTF-8 text); rename it") \
            from None
    return name


def im2rec_lst_split(prefix, count, shuffle=True, chunks=1, train_ratio=1.0, test_ratio=0.0):
    """Which of `count` listed entries go to which `.lst` file, as `im2rec.py --list` does it:
    {path: positions in the listing, in file order}.

    As im2rec: shuffled with `random.seed(100)`, cut into `chunks` (`PREFIX_0.lst`, ...), and,
    when train_ratio < 1, each chunk split into `_test` (first test_ratio), `_train` (next
    train_ratio) and `_val` (the rest, when train_ratio + test_ratio < 1). A shuffle's order
    depends on the count alone, so shuffling the positions gives im2rec's order of the entries.
    """
    order = array("Q", range(count))  # 8 bytes an entry
    if shuffle:
        random.Random(IM2REC_SHUFFLE_SEED).shuffle(order)
    chunk_size = (count + chunks - 1) // chunks
    files = {}
    for i in range(chunks):
        chunk = order[i * chunk_size : (i + 1) * chunk_size]
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


def write_im2rec_lst_files(prefix, entries, shuffle=True, chunks=1, train_ratio=1.0, test_ratio=0.0):
    """Write the `.lst` files `im2rec.py --list` makes from `entries` (im2rec_lst_split),
    each atomically; {path: how many entries}. The entries' lines wait in a temporary file
    beside the output, read back by offset: memory holds 24 bytes an entry, not the entries."""
    folder = Path(prefix).absolute().parent
    folder.mkdir(parents=True, exist_ok=True)
    offsets = array("Q", [0])
    with tempfile.TemporaryFile(dir=folder, prefix=".listing-") as spool:
        for entry in entries:
            offsets.append(offsets[-1] + spool.write(format_lst_line(entry).encode("utf-8")))
        spool.flush()
        counts = {}
        for path, positions in im2rec_lst_split(prefix, len(offsets) - 1, shuffle, chunks, train_ratio,
                                                test_ratio).items():
            with atomic_open(path, "wb") as out:
                for i in positions:
                    out.write(os.pread(spool.fileno(), offsets[i + 1] - offsets[i], offsets[i]))
            counts[path] = len(positions)
    return counts
