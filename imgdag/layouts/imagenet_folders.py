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
Class folders whose names differ only in case are two classes, with a warning.
"""
import warnings
from collections import Counter

from imgdag.errors import DataError
from imgdag.imagecheck import ImageCheck, check_reading
from imgdag.layouts.records import IMAGE_SUFFIXES, ImageRecord, LayoutReading, Split, is_image_name
from imgdag.layouts.tree import open_tree

SPLITS = ("train", "validation")
EXPECTED = "expected train/<wnid>/*.JPEG and validation/<wnid>/*.JPEG"


def class_folders(tree, prefix: str) -> list[str]:
    """The folders directly under `prefix`: those holding files, and empty ones on disk."""
    folders = {n[len(prefix):].split("/")[0] for n in tree.names(prefix) if "/" in n[len(prefix):]}
    local = tree.local_path(prefix)
    if local is not None and local.is_dir():
        folders |= {p.name for p in local.iterdir() if p.is_dir()}
    return sorted(folders)


def read_imagenet_folders(raw, splits=SPLITS, classes: list[str] | None = None,
                          empty_classes: str = "error", check: ImageCheck | None = None,
                          subset: int | None = None) -> LayoutReading:
    """Read the class-folder splits of a folder or tar; labels index `classes` (default: the
    sorted folders of train/); a class without a train image: see the module docstring. With
    `subset`, only the first that many images of each class (LayoutReading.keep_first); with
    `check`, images that do not decode are dropped or refused (imgdag.imagecheck) first."""
    tree = open_tree(raw)
    root = tree.find_root("train", EXPECTED)
    if classes is None:
        classes = class_folders(tree, root + "train/")
        if not classes:
            raise DataError(tree.where(root + "train/"), f"no class folders with images ({EXPECTED})")
        by_case = Counter(c.casefold() for c in classes)
        twins = [c for c in classes if by_case[c.casefold()] > 1]
        if twins:
            warnings.warn(f"{tree.where(root + 'train/')}: class folders differ only in case, each a class of "
                          f"its own: {', '.join(twins)}", stacklevel=2)
    index = {wnid: i for i, wnid in enumerate(classes)}
    skipped: Counter = Counter()
    reading = LayoutReading(list(classes), {}, skipped)
    for split in splits:
        prefix = f"{root}{split}/"
        names = tree.names(prefix)
        if not names:
            raise DataError(tree.where(prefix), f"missing or empty {split}/ folder ({EXPECTED})")
        records, unknown = [], Counter()
        if special := tree.special_under(prefix):
            skipped[f"{split}: special files (FIFO, socket, device, broken or looping link)"] += special
        for name in names:
            parts = name[len(prefix):].split("/")
            if len(parts) != 2:
                skipped[f"{split}: files not directly inside a class folder"] += 1
            elif not is_image_name(parts[1]):
                skipped[f"{split}: files not in an accepted image format ({' '.join(IMAGE_SUFFIXES)})"] += 1
            elif parts[0] not in index:
                unknown[parts[0]] += 1
            else:
                label = index[parts[0]]  # the class list's WNID string, not this path's copy of it
                records.append(ImageRecord(name, label, classes[label]))
        if unknown:
            shown = ", ".join(sorted(unknown)[:5]) + (", ..." if len(unknown) > 5 else "")
            reason = f"{split}: images of {len(unknown)} classes not in the class list ({shown})"
            skipped[reason] += sum(unknown.values())
        reading.splits[split] = Split(tree, records)
    reading.keep_first(subset)
    check_reading(reading, check)
    if "train" in reading.splits:
        reading.check_classes_used("train", tree.where(root + "train/"), empty_classes)
    return reading
