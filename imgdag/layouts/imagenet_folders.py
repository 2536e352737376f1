"""ImageNet class folders: `train/<wnid>/*.JPEG` and `validation/<wnid>/*.JPEG`.

The root is a folder or a .tar/.zip of one; `train/` may sit one folder down (for example
`imagenet-8/train/...`). Classes are the WNID folders of train/ in sorted order (so
imagenet-8 is n01440764 n01443537 n01484850 n01491361 n01494475 n01496331 n01498041
n01514668 = labels 0..7), unless a class list is given. Every folder directly in train/ is
a class, with or without images: a class without a usable train image is an error (or, with
empty_classes="keep", keeps its index and is reported), so labels never shift silently.
Images of classes outside the list, files not in an accepted image format (IMAGE_SUFFIXES:
.jpeg, .jpg, .png, any case; WebP, GIF, BMP, TIFF are not), files not inside a class folder
and special files (FIFOs, sockets, broken or looping symlinks) are skipped and counted.
Class folders whose names differ only in case are two classes, with a warning. A folder is
read a class folder at a time (imgdag.layouts.tree.FolderTree), so the CNTK maps step holds one
class's names whatever the split's size; an archive is listed whole (a tar has no index).
"""
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from imgdag.errors import DataError
from imgdag.imagecheck import ImageCheck, decoding, warn_skipped
from imgdag.layouts.records import (IMAGE_SUFFIXES, ImageRecord, LayoutReading, Split, check_classes_used,
                                    is_image_name)
from imgdag.layouts.tree import FolderTree, open_tree

SPLITS = ("train", "validation")
EXPECTED = "expected train/<wnid>/*.JPEG and validation/<wnid>/*.JPEG"


class ImagenetFolders:
    """The class folders of a folder or tar, read a class folder at a time: `records(split)`
    yields a split's records as it goes, so a writer that streams them (the CNTK maps) holds one
    class's names, not the split's. Counts of what is skipped gather in `skipped`."""

    def __init__(self, raw, splits=SPLITS, classes: list[str] | None = None, empty_classes: str = "error",
                 check: ImageCheck | None = None, subset: int | None = None):
        self.tree = FolderTree(raw) if Path(raw).is_dir() else open_tree(raw)
        self.root = self.tree.find_root("train", EXPECTED)
        for split in splits:  # before any image is checked (a split of empty folders: at its end)
            prefix = f"{self.root}{split}/"
            if not (self.tree.subfolders(prefix) or self.tree.files_directly_in(prefix)[0]):
                raise DataError(self.tree.where(prefix), f"missing or empty {split}/ folder ({EXPECTED})")
        if classes is None:
            classes = self.tree.subfolders(self.root + "train/")
            if not classes:
                raise DataError(self.tree.where(self.root + "train/"), f"no class folders with images ({EXPECTED})")
            by_case = Counter(c.casefold() for c in classes)
            twins = [c for c in classes if by_case[c.casefold()] > 1]
            if twins:
                warnings.warn(f"{self.tree.where(self.root + 'train/')}: class folders differ only in case, each "
                              f"a class of its own: {', '.join(twins)}", stacklevel=2)
        self.classes = list(classes)
        self.index = {wnid: i for i, wnid in enumerate(self.classes)}
        self.empty_classes, self.check, self.subset = empty_classes, check, subset
        self.skipped: Counter = Counter()  # "split: reason" -> count

    def records(self, split: str) -> Iterator[ImageRecord]:
        """The split's images in path order (the first `subset` of each class), those that do not
        decode left out or refused (imgdag.imagecheck); for train, then the check that every
        class has an image (the module docstring)."""
        prefix = f"{self.root}{split}/"
        bad: dict[str, str] = {}
        names = self._image_names(split, prefix)
        if self.check is not None:
            names = decoding(self.tree, names, self.check, f"check {split} images", bad)
        used = set()
        for name in names:
            label = self.index[name[len(prefix):].split("/")[0]]  # the class list's WNID string
            used.add(label)
            yield ImageRecord(name, label, self.classes[label])
        if bad:
            self.skipped[f"{split}: images that do not decode"] += len(bad)
            warn_skipped(self.tree.where(), [f"{where}: {problem}" for where, problem in bad.items()])
        if split == "train":
            check_classes_used(self.classes, used, split, self.tree.where(prefix), self.empty_classes,
                               self.skipped)

    def _image_names(self, split: str, prefix: str) -> Iterator[str]:
        """The names of the split's images in known class folders, class folder by class folder
        (in path order), the first `subset` of each; everything else is counted in `skipped`."""
        files, special = self.tree.files_directly_in(prefix)
        folders = sorted(self.tree.subfolders(prefix), key=lambda f: f + "/")  # as the paths sort
        counts, unknown, seen = Counter(), Counter(), len(files)
        counts["files not directly inside a class folder"] += len(files)
        for folder in folders:
            names = self.tree.names(f"{prefix}{folder}/")
            special += self.tree.special_under(f"{prefix}{folder}/")
            seen += len(names)
            images = []
            for name in names:
                file = name[len(prefix) + len(folder) + 1:]
                if "/" in file:
                    counts["files not directly inside a class folder"] += 1
                elif not is_image_name(file):
                    counts[f"files not in an accepted image format ({' '.join(IMAGE_SUFFIXES)})"] += 1
                elif folder not in self.index:
                    unknown[folder] += 1
                else:
                    images.append(name)
            if self.subset is not None and len(images) > self.subset:
                counts[f"left out of the smoke run's subset (the first {self.subset} per class)"] += \
                    len(images) - self.subset
                del images[self.subset:]
            yield from images
        if not seen:
            raise DataError(self.tree.where(prefix), f"missing or empty {split}/ folder ({EXPECTED})")
        counts["special files (FIFO, socket, device, broken or looping link)"] += special
        if unknown:
            shown = ", ".join(sorted(unknown)[:5]) + (", ..." if len(unknown) > 5 else "")
            counts[f"images of {len(unknown)} classes not in the class list ({shown})"] += sum(unknown.values())
        for reason, n in counts.items():
            if n:
                self.skipped[f"{split}: {reason}"] += n

    def close(self) -> None:
        self.tree.close()


def read_imagenet_folders(raw, splits=SPLITS, classes: list[str] | None = None,
                          empty_classes: str = "error", check: ImageCheck | None = None,
                          subset: int | None = None) -> LayoutReading:
    """Read the class-folder splits of a folder or tar whole (ImagenetFolders, a split at a
    time); labels index `classes` (default: the sorted folders of train/); a class without a
    train image: see the module docstring. With `subset`, only the first that many images of
    each class; with `check`, images that do not decode are dropped or refused
    (imgdag.imagecheck)."""
    folders = ImagenetFolders(raw, splits, classes, empty_classes, check, subset)
    splits = {split: Split(folders.tree, list(folders.records(split))) for split in splits}
    return LayoutReading(folders.classes, splits, folders.skipped)
