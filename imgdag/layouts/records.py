"""The record shape every layout reader returns.

An ImageRecord is one image: its path relative to the root the reader was given (a folder,
or an archive whose extraction gives that folder), its label (the index of its class in
the reading's class list, UNLABELLED for test images), its WNID or class name, and extras
such as a bounding box. A LayoutReading holds a dataset's splits, its class order, and the
counts of everything the reader skipped, by reason: nothing is dropped silently.
"""
from collections import Counter
from dataclasses import dataclass, field

from imgdag.layouts.tree import FileTree

UNLABELLED = -1
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


@dataclass(frozen=True)
class ImageRecord:
    path: str
    label: int
    wnid: str
    extras: dict = field(default_factory=dict, compare=True, hash=False)


@dataclass
class Split:
    """One split's records, and the tree their paths are relative to (None: paths only)."""

    tree: FileTree | None
    records: list[ImageRecord]


@dataclass
class LayoutReading:
    """A dataset read from its raw layout."""

    classes: list[str]  # class i has label i (WNIDs, or breed names)
    splits: dict[str, Split]
    skipped: Counter = field(default_factory=Counter)  # "split: reason" -> count
    class_words: dict[str, str] = field(default_factory=dict)  # WNID -> words, when known

    def records(self, split: str) -> list[ImageRecord]:
        return self.splits[split].records

    def read_bytes(self, split: str, record: ImageRecord) -> bytes:
        return self.splits[split].tree.read_bytes(record.path)

    def skipped_text(self) -> str:
        """`N reason; M reason` or `none`."""
        return "; ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"

    def close(self) -> None:
        for split in self.splits.values():
            if split.tree is not None:
                split.tree.close()


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)
