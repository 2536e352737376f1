"""Class folders for the dog-breed recipe, as the Gluon / d2l "Kaggle dog breed" reorg makes them.

    OUT/train/<breed>/<id>.jpg         training images minus the validation ones
    OUT/valid/<breed>/<id>.jpg         n_valid images of every breed
    OUT/train_valid/<breed>/<id>.jpg   train + valid (for the final fit)
    OUT/test/unknown/<id>.jpg          all test images
    OUT/classes.txt                    label order (sample_submission column order)

`list_class_folders` lists a written tree as `.lst` entries per folder (paths relative to
OUT, labels from classes.txt, -1 for test), which stand for the folders downstream.

n_valid = max(1, floor(min_class_count * valid_ratio)), where min_class_count is the image
count of the rarest breed that has images. Which images are held out is deterministic:
each breed's images in path order, shuffled by `random.Random(seed)`. Only breeds with
images get folders, so use classes.txt (not folder discovery) for label indices. Files are
hardlinked from the raw folder when possible, else copied (or written from the zip). The
whole tree is built in a temporary sibling and renamed into place. A class name must be a
plain folder name that classes.txt can hold (`class_name_problem`): anything else is refused
before a file is written.
"""
import math
import os
import random
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from imgdag.atomic import atomic_dir
from imgdag.errors import DataError
from imgdag.formats.class_list import read_class_list, write_class_list
from imgdag.formats.lst import LstEntry
from imgdag.layouts.records import UNLABELLED, ImageRecord, LayoutReading
from imgdag.layouts.tree import FileTree


FOLDERS = ("train", "valid", "train_valid", "test")


@dataclass
class ReorgCounts:
    valid_per_class: int
    images: dict = field(default_factory=dict)  # folder -> images written
    linked: int = 0
    copied: int = 0

    def line(self) -> str:
        folders = ", ".join(f"{k} {v}" for k, v in self.images.items())
        return (f"{folders}; {self.valid_per_class} valid per class; "
                f"{self.linked} hardlinked, {self.copied} copied")


def valid_per_class(records: list[ImageRecord], valid_ratio: float) -> int:
    """max(1, floor(count of the rarest labelled class * valid_ratio))."""
    if not 0 < valid_ratio < 1:
        raise ValueError(f"valid_ratio must be between 0 and 1, got {valid_ratio}")
    counts = defaultdict(int)
    for record in records:
        counts[record.label] += 1
    return max(1, math.floor(min(counts.values()) * valid_ratio)) if counts else 0


def split_train_valid(records: list[ImageRecord], valid_ratio: float, seed: int = 0):
    """(train, valid): valid_per_class images of every class held out, deterministically."""
    n_valid = valid_per_class(records, valid_ratio)
    by_class = defaultdict(list)
    for record in sorted(records, key=lambda r: r.path):
        by_class[record.label].append(record)
    rng = random.Random(seed)
    train, valid = [], []
    for label in sorted(by_class):
        images = by_class[label]
        rng.shuffle(images)
        valid += images[:n_valid]
        train += images[n_valid:]
    return train, valid


def class_name_problem(name: str) -> str | None:
    """Why `name` cannot be a class folder and a classes.txt line, or None: it must be one plain
    path component (not empty, `.` or `..`; no `/`, `\\` or NUL) without whitespace (classes.txt
    keeps a line's first word only)."""
    if name in ("", ".", "..") or any(c in "/\\\0" or c.isspace() for c in name):
        return (f"class name {name!r} is not a plain folder name "
                "(expected no '/', '\\', NUL or whitespace, and not '', '.' or '..')")
    return None


def _place(tree: FileTree, record: ImageRecord, target: Path, counts: ReorgCounts) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tree.local_path(record.path)
    if source is not None:
        try:
            os.link(source, target)
            counts.linked += 1
            return
        except OSError:
            shutil.copyfile(source, target)
    else:
        target.write_bytes(tree.read_bytes(record.path))
    counts.copied += 1


def write_class_folders(reading: LayoutReading, out_dir, valid_ratio: float = 0.1, seed: int = 0) -> ReorgCounts:
    """Build OUT/{train,valid,train_valid,test/unknown} from a dog-breed reading."""
    train_records = reading.records("train")
    for name in reading.classes:  # the folders' names (the dog-breed reader checks them too)
        if problem := class_name_problem(name):
            raise DataError(out_dir, f"nothing written: {problem}")
    train, valid = split_train_valid(train_records, valid_ratio, seed)
    counts = ReorgCounts(valid_per_class(train_records, valid_ratio))
    plan = [("train", train, True), ("valid", valid, True), ("train_valid", train + valid, True),
            ("test", reading.records("test"), False)]
    with atomic_dir(out_dir) as tmp:
        for folder, records, by_class in plan:
            tree = reading.splits["train" if by_class else "test"].tree
            for record in tqdm(records, desc=folder, unit=" images", leave=False):
                name = PurePosixPath(record.path).name
                target = tmp / folder / (record.wnid if by_class else "unknown") / name
                _place(tree, record, target, counts)
            counts.images[folder] = len(records)
        write_class_list(tmp / "classes.txt", reading.classes)
    return counts


def list_class_folders(out_dir) -> dict[str, list[LstEntry]]:
    """Each folder's images as `.lst` entries: `<folder>/<class>/<file>` relative to `out_dir`,
    in path order, labelled by the class's line in classes.txt (test images: -1)."""
    out = Path(out_dir)
    label = {name: i for i, name in enumerate(read_class_list(out / "classes.txt"))}
    lists = {}
    for folder in FOLDERS:
        entries = []
        for path in sorted((out / folder).glob("*/*")):
            if folder == "test":
                image_label = UNLABELLED
            elif path.parent.name in label:
                image_label = label[path.parent.name]
            else:
                raise DataError(path.parent, "class folder not named in classes.txt")
            entries.append(LstEntry(len(entries), (float(image_label),),
                                    path.relative_to(out).as_posix()))
        lists[folder] = entries
    return lists
