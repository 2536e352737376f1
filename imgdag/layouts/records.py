"""The record shape every layout reader returns.

An ImageRecord is one image: its path relative to the root the reader was given (a folder,
or an archive whose extraction gives that folder), its label (the index of its class in
the reading's class list, UNLABELLED for test images), its WNID or class name, and extras
such as a bounding box. A LayoutReading holds a dataset's splits, its class order, and the
counts of everything the reader skipped, by reason: nothing is dropped silently.
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


@dataclass(frozen=True)
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
        """`N reason; M reason` or `none`."""
        return "; ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"

    def check_classes_used(self, split: str, where, empty_classes: str = "error") -> None:
        """Every class of the class list has an image in `split`. A class without one is a
        DataError (its label would promise images that are not there), or, with
        empty_classes="keep", keeps its index and is counted in `skipped` by name."""
        used = {r.label for r in self.records(split)}
        empty = [c for i, c in enumerate(self.classes) if i not in used]
        if not empty:
            return
        shown = ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else "")
        if empty_classes != "keep":
            raise DataError(where, f"{len(empty)} classes of the class list have no usable {split} image "
                                   f"({shown}); fix the data, or keep their label indices with empty_classes: keep")
        self.skipped[f"{split}: classes without a usable image, label index kept ({shown})"] += len(empty)

    def close(self) -> None:
        for split in self.splits.values():
            if split.tree is not None:
                split.tree.close()


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)
