"""The record shape every layout reader returns.

An ImageRecord is one image: its path relative to the root the reader was given (a folder,
or an archive whose extraction gives that folder), its label (the index of its class in
the reading's class list, UNLABELLED for test images), its WNID or class name, and extras
such as a bounding box. A LayoutReading holds a dataset's splits, its class order, and the
counts of everything the reader skipped, by reason: nothing is dropped silently. A smoke run
(`snakemake --config subset=N`, imgdag/smoke.py) keeps only the first N images of each class
(`first_per_class`), picked by each reader before its images are checked.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imgdag.errors import DataError

if TYPE_CHECKING:  # a type name only: format readers use records without the layout walkers
    from imgdag.layouts.tree import FileTree

UNLABELLED = -1
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
EMPTY_CLASSES = ("error", "keep")  # a listed class without a usable image: refuse, or keep its index and report it


@dataclass(frozen=True, slots=True)  # slots: no per-record __dict__ (a dataset holds millions)
class ImageRecord:
    path: str
    label: int
    wnid: str
    extras: dict = field(default_factory=dict, compare=True, hash=False)


@dataclass
class Split:
    """One split's records, and the tree their paths are relative to (None: paths only)."""

    tree: "FileTree | None"
    records: list[ImageRecord]


@dataclass
class LayoutReading:
    """A dataset read from its raw layout."""

    classes: list[str]  # class i has label i (WNIDs, or breed names)
    splits: dict[str, Split]
    skipped: Counter = field(default_factory=Counter)  # "split: reason" -> count

    def records(self, split: str) -> list[ImageRecord]:
        return self.splits[split].records

    def read_bytes(self, split: str, record: ImageRecord) -> bytes:
        return self.splits[split].tree.read_bytes(record.path)

    def skipped_text(self) -> str:
        return skipped_text(self.skipped)

    def check_classes_used(self, split: str, where, empty_classes: str = "error") -> None:
        """Every class of the class list has an image in `split` (`check_classes_used`)."""
        check_classes_used(self.classes, {r.label for r in self.records(split)}, split, where, empty_classes,
                           self.skipped)

    def keep_first(self, n: int | None) -> None:
        """A smoke run's subset: in every split, the first `n` images of each class by path
        (of unlabelled test images, the first n x the class count), in the split's own order;
        those left out are counted in `skipped`. None keeps every image."""
        if n is None:
            return
        for name, split in self.splits.items():
            by_path = sorted(range(len(split.records)), key=lambda i: split.records[i].path)
            picked = first_per_class([split.records[i].label for i in by_path], n, len(self.classes))
            left_out = len(split.records) - len(picked)
            split.records = [split.records[i] for i in sorted(by_path[j] for j in picked)]
            if left_out:
                self.skipped[f"{name}: left out of the smoke run's subset (the first {n} per class)"] += left_out

    def close(self) -> None:
        for split in self.splits.values():
            if split.tree is not None:
                split.tree.close()


def skipped_text(skipped: Counter) -> str:
    """`N reason; M reason` or `none`."""
    return "; ".join(f"{n} {why}" for why, n in sorted(skipped.items())) or "none"


def check_classes_used(classes: list[str], used: set[int], split: str, where, empty_classes: str,
                       skipped: Counter) -> None:
    """Every class of `classes` has a label in `used`. A class without one is a DataError (its
    label would promise images that are not there), or, with empty_classes="keep", keeps its
    index and is counted in `skipped` by name."""
    empty = [c for i, c in enumerate(classes) if i not in used]
    if not empty:
        return
    shown = ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else "")
    if empty_classes != "keep":
        raise DataError(where, f"{len(empty)} classes of the class list have no usable {split} image "
                               f"({shown}); fix the data, or keep their label indices with empty_classes: keep")
    skipped[f"{split}: classes without a usable image, label index kept ({shown})"] += len(empty)


def first_per_class(labels, n: int, classes: int) -> list[int]:
    """Positions in `labels` of the first `n` of each label, and of the first n x `classes`
    UNLABELLED ones (test images: as many as a labelled split of n per class), ascending."""
    taken: Counter = Counter()
    picked = []
    for i, label in enumerate(labels):
        label = int(label)
        if taken[label] < (n * classes if label == UNLABELLED else n):
            taken[label] += 1
            picked.append(i)
    return picked


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)
