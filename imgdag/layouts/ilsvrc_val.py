"""ILSVRC2012 validation labels in a model's class order, from the devkit or from Caffe's files.

Two sources, one table:
- devkit (`ILSVRC2012_devkit_t12/` or its .tar.gz): `data/meta.mat` holds `synsets`, an
  N x 1 MATLAB struct array with fields ILSVRC2012_ID, WNID, words, gloss, num_children,
  children (ILSVRC2012_IDs), wordnet_height, num_train_images. Only the leaf synsets
  (num_children == 0; IDs 1..1000 in the real kit) are classes. Their IDs are NOT in sorted
  WNID order. `data/ILSVRC2012_validation_ground_truth.txt` gives one ILSVRC2012_ID per line
  for val images 1, 2, ... (`ILSVRC2012_val_00000001.JPEG`, ...).
- Caffe: `val.txt` (`NAME label`, label = line index in `synset_words.txt`) and
  `synset_words.txt` (`WNID words`, 1,000 lines, sorted WNIDs: the model's class order).

Mapping: image -> ILSVRC2012_ID -> WNID -> index of the WNID in the model's class list.
The class list defaults to the sorted leaf WNIDs (devkit) or synset_words order (Caffe),
which are the same list for the real data; a model's own list (e.g. the 8 imagenet-8
WNIDs) keeps only images of its classes and counts the others. With `images` (the val tar
or a folder of the images) the table keeps only images present and counts the rest; labels
find their image by file name, so two images of one name (in two subfolders) are an error.
"""
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from imgdag.errors import DataError
from imgdag.imagecheck import ImageCheck, check_reading
from imgdag.layouts.records import ImageRecord, LayoutReading, Split, is_image_name
from imgdag.layouts.tree import open_tree
from imgdag.textfiles import ascii_int, read_text, text_lines

META_FIELDS = ("ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
               "wordnet_height", "num_train_images")
DEVKIT_EXPECTED = "expected ILSVRC2012_devkit_t12/data/meta.mat and data/ILSVRC2012_validation_ground_truth.txt"
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
VAL_NAME = "ILSVRC2012_val_{:08d}.JPEG"
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by imgdag in the ILSVRC2012 devkit layout"


@dataclass(frozen=True)
class Synset:
    """One entry of meta.mat's `synsets`."""

    ilsvrc2012_id: int
    wnid: str
    words: str
    gloss: str
    num_children: int
    children: tuple[int, ...]
    wordnet_height: int
    num_train_images: int


def _text(value) -> str:
    flat = np.ravel(value)
    return str(flat[0]) if flat.size else ""


def _int(value) -> int:
    return int(np.ravel(value)[0])


def parse_meta_mat(source, where) -> list[Synset]:
    """The `synsets` of a devkit meta.mat (bytes or a path), in file order."""
    try:
        import scipy.io  # loaded only here: it costs the light tools' start-up a second

        mat = scipy.io.loadmat(io.BytesIO(source) if isinstance(source, bytes) else source)
        table = mat["synsets"]
        missing = [f for f in META_FIELDS if f not in (table.dtype.names or ())]
    except (ValueError, TypeError, OSError, KeyError, NotImplementedError) as e:
        raise DataError(where, f"not the devkit's meta.mat (expected a `synsets` struct array): {e}") from e
    if missing:
        raise DataError(where, f"synsets lacks fields {missing} (expected {', '.join(META_FIELDS)})")
    synsets = []
    for s in np.ravel(table):
        synsets.append(Synset(_int(s["ILSVRC2012_ID"]), _text(s["WNID"]), _text(s["words"]), _text(s["gloss"]),
                              _int(s["num_children"]), tuple(int(c) for c in np.ravel(s["children"])),
                              _int(s["wordnet_height"]), _int(s["num_train_images"])))
    return synsets


def meta_mat_bytes(synsets: list[Synset]) -> bytes:
    """`synsets` as the devkit stores them: an N x 1 struct array of doubles and char arrays."""
    import scipy.io

    table = np.empty((len(synsets), 1), dtype=[(f, object) for f in META_FIELDS])
    for i, s in enumerate(synsets):
        table[i, 0] = (np.array([[s.ilsvrc2012_id]], dtype=np.float64), s.wnid, s.words, s.gloss,
                       np.array([[s.num_children]], dtype=np.float64),
                       np.array([s.children], dtype=np.float64) if s.children else np.zeros((0, 0)),
                       np.array([[s.wordnet_height]], dtype=np.float64),
                       np.array([[s.num_train_images]], dtype=np.float64))
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"synsets": table}, format="5")
    # the 116-byte text header carries a creation time; a fixed one keeps the bytes reproducible
    return MAT_HEADER.ljust(116) + buffer.getvalue()[116:]


def leaf_synsets(synsets: list[Synset]) -> list[Synset]:
    """The classes: synsets without children."""
    return [s for s in synsets if s.num_children == 0]


def parse_ground_truth(text: str, where) -> list[int]:
    """ILSVRC2012_IDs of val images 1, 2, ..."""
    ids = []
    for line_no, line in enumerate(text_lines(text), 1):
        ilsvrc_id = ascii_int(line.strip())
        if ilsvrc_id is None or ilsvrc_id < 0:
            raise DataError(where, f"line {line_no}: {line!r} is not an ILSVRC2012_ID (expected one integer a line)")
        ids.append(ilsvrc_id)
    return ids


def parse_synset_words(text: str, where) -> list[tuple[str, str]]:
    """synset_words.txt as (WNID, words) in file order (= Caffe label order)."""
    rows = []
    for line_no, line in enumerate(text_lines(text), 1):
        wnid, _, words = line.strip().partition(" ")
        if not re.fullmatch("n[0-9]{8}", wnid):
            raise DataError(where, f"line {line_no}: {line!r} does not start with a WNID (expected 'nXXXXXXXX words')")
        rows.append((wnid, words))
    if len({w for w, _ in rows}) != len(rows):
        raise DataError(where, "a WNID appears twice")
    return rows


def parse_caffe_val(text: str, where) -> list[tuple[str, int]]:
    """Caffe val.txt as (image name, label) rows."""
    rows = []
    for line_no, line in enumerate(text_lines(text), 1):
        fields = line.split()
        if not fields:
            continue
        label = ascii_int(fields[-1])
        if len(fields) != 2 or label is None or label < 0:
            raise DataError(where, f"line {line_no}: expected 'NAME label', got {line!r}")
        rows.append((fields[0], label))
    return rows


def _build_table(rows, classes: list[str], images, skipped: Counter, check: ImageCheck | None,
                 subset: int | None) -> LayoutReading:
    """rows: (image name, WNID, ILSVRC2012_ID or None), in val order; with `subset`, only the
    first that many images of each class (LayoutReading.keep_first); with `images` and `check`,
    images that do not decode are dropped or refused (imgdag.imagecheck)."""
    index = {wnid: i for i, wnid in enumerate(classes)}
    tree = open_tree(images) if images is not None else None
    present = None
    if tree is not None:
        present = {}
        for n in tree.names():
            if is_image_name(n):
                first = present.setdefault(PurePosixPath(n).name, n)
                if first != n:
                    raise DataError(tree.where(n), f"has the same file name as {tree.where(first)} (labels "
                                                   "are matched to val images by file name: each must be unique)")
    records = []
    for name, wnid, ilsvrc_id in rows:
        path = name
        if present is not None:
            path = present.pop(name, None)
            if path is None:
                skipped["val: labelled images not present in the images"] += 1
                continue
        if wnid not in index:
            skipped["val: images of classes not in the class list (excluded)"] += 1
            continue
        records.append(ImageRecord(path, index[wnid], wnid, {"ilsvrc2012_id": ilsvrc_id}))
    if present:
        skipped["val: images without a label"] += len(present)
    reading = LayoutReading(list(classes), {"val": Split(tree, records)}, +skipped)
    reading.keep_first(subset)
    check_reading(reading, check)
    return reading


def read_devkit(devkit) -> tuple[list[Synset], list[int]]:
    """(synsets, ground-truth IDs) from a devkit folder or .tar.gz."""
    with open_tree(devkit) as tree:
        root = tree.find_root("meta.mat", DEVKIT_EXPECTED)
        synsets = parse_meta_mat(tree.read_bytes(root + "meta.mat"), tree.where(root + "meta.mat"))
        if not tree.has_file(root + GROUND_TRUTH):
            raise DataError(tree.where(root + GROUND_TRUTH), f"missing ({DEVKIT_EXPECTED})")
        truth = parse_ground_truth(tree.read_text(root + GROUND_TRUTH), tree.where(root + GROUND_TRUTH))
    return synsets, truth


def val_table_from_devkit(devkit, classes: list[str] | None = None, images=None,
                          check: ImageCheck | None = None, subset: int | None = None) -> LayoutReading:
    """Val records labelled by index in `classes` (default: sorted leaf WNIDs) via meta.mat IDs."""
    synsets, truth = read_devkit(devkit)
    by_id = {s.ilsvrc2012_id: s for s in leaf_synsets(synsets)}
    rows = []
    for number, ilsvrc_id in enumerate(truth, 1):
        if ilsvrc_id not in by_id:
            raise DataError(devkit, f"{GROUND_TRUTH} line {number}: ILSVRC2012_ID {ilsvrc_id} "
                                    "is not a leaf synset of meta.mat")
        rows.append((VAL_NAME.format(number), by_id[ilsvrc_id].wnid, ilsvrc_id))
    classes = classes if classes is not None else sorted(by_id[i].wnid for i in by_id)
    return _build_table(rows, classes, images, Counter(), check, subset)


def val_table_from_caffe(val_txt, synset_words, classes: list[str] | None = None, images=None,
                         devkit=None, check: ImageCheck | None = None, subset: int | None = None) -> LayoutReading:
    """Val records from Caffe's val.txt + synset_words.txt; ILSVRC2012_IDs filled in when a devkit is given."""
    words = parse_synset_words(read_text(synset_words), synset_words)
    wnids = [w for w, _ in words]
    ids = {}
    if devkit is not None:
        ids = {s.wnid: s.ilsvrc2012_id for s in leaf_synsets(read_devkit(devkit)[0])}
    rows = []
    for line_no, (name, label) in enumerate(parse_caffe_val(read_text(val_txt), val_txt), 1):
        if label >= len(wnids):
            raise DataError(val_txt, f"row {line_no} ({name}): label {label} but {synset_words} has "
                                     f"{len(wnids)} classes")
        rows.append((name, wnids[label], ids.get(wnids[label])))
    return _build_table(rows, classes if classes is not None else wnids, images, Counter(), check, subset)
