"""Kaggle dog-breed-identification: `train.zip`, `test.zip`, `labels.csv(.zip)`, `sample_submission.csv(.zip)`.

The root is a folder holding those files (or already-extracted `train/` and `test/`
folders), or a zip of such a folder. train.zip holds `train/<id>.jpg`, test.zip holds
`test/<id>.jpg`; labels.csv is `id,breed` (one row per train image); sample_submission.csv
is `id,<breed 1>,...,<breed 120>`: its column order after `id` is the class order of a
submission, and so the label order here (`reading.classes`). Records carry the breed as
`wnid` and the image id in `extras["id"]`. Rows without an image, images without a row,
breeds not in the submission, and test images / submission ids that do not match are
counted in `reading.skipped`. A breed column without a train image is an error (or, with
empty_classes="keep", keeps its index and is reported). So are a breed column that is not a
plain folder name (it names a class folder: `class_folders.class_name_problem`; a labels.csv
breed that is no column is a counted skip) and two images of one id (`<id>.jpg` and
`<id>.png`): an id names one image.
"""
from collections import Counter
from pathlib import PurePosixPath

from imgdag.errors import DataError
from imgdag.formats.class_folders import class_name_problem
from imgdag.imagecheck import ImageCheck, check_reading
from imgdag.layouts.records import UNLABELLED, ImageRecord, LayoutReading, Split, is_image_name
from imgdag.layouts.tree import DirTree, FileTree, ZipTree, open_tree
from imgdag.textfiles import csv_rows

EXPECTED = ("expected train/ or train.zip, test/ or test.zip, labels.csv or labels.csv.zip, "
            "sample_submission.csv or sample_submission.csv.zip")


def _csv_text(tree: FileTree, root: str, name: str) -> tuple[str, str]:
    """(text, where) of `name` or of the one CSV inside `name.zip`."""
    if tree.has_file(root + name):
        return tree.read_text(root + name), tree.where(root + name)
    if tree.has_file(root + name + ".zip"):
        if not isinstance(tree, DirTree):
            raise DataError(tree.where(root + name + ".zip"), "zip inside an archive: extract the outer archive first")
        with ZipTree(tree.local_path(root + name + ".zip")) as inner:
            members = [n for n in inner.names() if PurePosixPath(n).name == name]
            if len(members) != 1:
                raise DataError(inner.where(), f"expected exactly one {name} inside")
            return inner.read_text(members[0]), inner.where(members[0])
    raise DataError(tree.where(root + name), f"missing ({EXPECTED})")


def _image_tree(tree: FileTree, root: str, split: str) -> tuple[FileTree, str]:
    """The tree holding `<split>/<id>.jpg` and the prefix of those names."""
    if tree.has_dir(root + split):
        return tree, f"{root}{split}/"
    if tree.has_file(f"{root}{split}.zip"):
        if not isinstance(tree, DirTree):
            raise DataError(tree.where(f"{root}{split}.zip"), "zip inside an archive: extract the outer archive first")
        inner = ZipTree(tree.local_path(f"{root}{split}.zip"))
        return inner, inner.find_root(split, f"expected {split}/<id>.jpg inside") + f"{split}/"
    raise DataError(tree.where(f"{root}{split}/"), f"missing folder or zip ({EXPECTED})")


def parse_labels_csv(text: str, where: str) -> dict[str, str]:
    """labels.csv rows as id -> breed."""
    rows = csv_rows(text)
    if not rows or [c.strip() for c in rows[0]] != ["id", "breed"]:
        raise DataError(where, f"header {rows[0] if rows else None} (expected id,breed)")
    labels = {}
    for line_no, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != 2 or not row[0] or not row[1]:
            raise DataError(where, f"line {line_no}: expected id,breed, got {row}")
        if row[0] in labels:
            raise DataError(where, f"line {line_no}: id {row[0]} appears twice")
        labels[row[0]] = row[1]
    return labels


def parse_submission(text: str, where: str) -> tuple[list[str], list[str]]:
    """sample_submission.csv as (class order, ids)."""
    rows = csv_rows(text)
    if not rows or rows[0][:1] != ["id"] or len(rows[0]) < 2:
        raise DataError(where, "header must be id,<breed>,<breed>,... (the submission's class order)")
    classes = rows[0][1:]
    if len(set(classes)) != len(classes):
        raise DataError(where, "a breed column appears twice")
    for breed in classes:
        if problem := class_name_problem(breed):
            raise DataError(where, f"header: {problem}")
    return classes, [row[0] for row in rows[1:] if row]


def _image_ids(tree: FileTree, prefix: str, split: str, skipped: Counter) -> dict[str, str]:
    """id -> name for the images directly under prefix; DataError if two images have one id."""
    ids = {}
    for name in tree.names(prefix):
        if "/" in name[len(prefix):] or not is_image_name(name):
            skipped[f"{split}: non-image or nested files"] += 1
            continue
        image_id = PurePosixPath(name).stem
        if image_id in ids:
            raise DataError(tree.where(name), f"a second image of id {image_id}, beside "
                                              f"{PurePosixPath(ids[image_id]).name} (expected one image per id)")
        ids[image_id] = name
    return ids


def read_dog_breed(raw, empty_classes: str = "error", check: ImageCheck | None = None,
                   subset: int | None = None) -> LayoutReading:
    """Read train (labelled by labels.csv) and test records; classes in submission column order.
    With `subset`, only the first that many images of each breed (LayoutReading.keep_first);
    with `check`, images that do not decode are dropped or refused (imgdag.imagecheck) first."""
    tree = open_tree(raw)
    root = next((tree.find_root(m, EXPECTED) for m in ("labels.csv", "labels.csv.zip")
                 if any(PurePosixPath(n).name == m for n in tree.names())), None)
    if root is None:
        raise DataError(tree.where("labels.csv"), f"missing ({EXPECTED})")
    labels = parse_labels_csv(*_csv_text(tree, root, "labels.csv"))
    classes, submission_ids = parse_submission(*_csv_text(tree, root, "sample_submission.csv"))
    index = {breed: i for i, breed in enumerate(classes)}
    skipped: Counter = Counter()

    train_tree, prefix = _image_tree(tree, root, "train")
    train_ids = _image_ids(train_tree, prefix, "train", skipped)
    train = []
    for image_id, name in sorted(train_ids.items()):
        breed = labels.get(image_id)
        if breed is None:
            skipped["train: images without a labels.csv row"] += 1
        elif breed not in index:
            skipped["train: images of a breed not in sample_submission.csv"] += 1
        else:
            train.append(ImageRecord(name, index[breed], breed, {"id": image_id}))
    skipped["labels.csv: rows without a train image"] += len(set(labels) - set(train_ids))

    test_tree, prefix = _image_tree(tree, root, "test")
    test_ids = _image_ids(test_tree, prefix, "test", skipped)
    test = [ImageRecord(name, UNLABELLED, "", {"id": image_id}) for image_id, name in sorted(test_ids.items())]
    skipped["test: images without a sample_submission.csv row"] += len(set(test_ids) - set(submission_ids))
    skipped["sample_submission.csv: rows without a test image"] += len(set(submission_ids) - set(test_ids))
    reading = LayoutReading(classes, {"train": Split(train_tree, train), "test": Split(test_tree, test)}, +skipped)
    reading.keep_first(subset)
    check_reading(reading, check)
    reading.check_classes_used("train", train_tree.where(prefix), empty_classes)
    return reading
