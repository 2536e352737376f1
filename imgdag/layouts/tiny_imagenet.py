"""Tiny ImageNet: `tiny-imagenet-200.zip` or its extracted folder.

Layout (under `tiny-imagenet-200/`, or at the root):
    wnids.txt                           200 WNIDs, one a line (not sorted)
    words.txt                           `WNID<TAB>words` for all of WordNet
    train/<wnid>/images/<wnid>_<i>.JPEG
    train/<wnid>/<wnid>_boxes.txt       `NAME<TAB>x0<TAB>y0<TAB>x1<TAB>y1`
    val/images/val_<i>.JPEG
    val/val_annotations.txt             `NAME<TAB>WNID<TAB>x0<TAB>y0<TAB>x1<TAB>y1`
    test/images/test_<i>.JPEG           unlabelled

Label convention: the index of the WNID in *sorted* wnids.txt (what ImageFolder on train/
gives and what Tiny ImageNet models are trained with); `reading.classes` is that order.
Records carry `extras["box"] = (x0, y0, x1, y1)` (inclusive pixel corners) when known; a
box outside the 64x64 image or inverted (x0 > x1) is an error naming the file and line (the
real annotations hold none: some are one pixel wide, x0 == x1, which is valid), and so is a
val image annotated twice or a train image boxed twice.
A WNID of wnids.txt without a train image is an error (or, with empty_classes="keep", keeps
its index and is reported). Everything else that does not fit is counted in
`reading.skipped`: val annotations naming missing images, images without annotations,
unknown WNIDs, classes without a `<wnid>_boxes.txt` (named), files outside the layout above
(named).
Images are 64x64 JPEGs, some grayscale: decode them with `imgdag.codec.decode_rgb`.
"""
from collections import Counter, defaultdict

from imgdag.errors import DataError
from imgdag.formats.index_table import check_box
from imgdag.layouts.records import UNLABELLED, ImageRecord, LayoutReading, Split, is_image_name
from imgdag.layouts.tree import FileTree, open_tree
from imgdag.textfiles import ascii_int, text_lines

EXPECTED = ("expected wnids.txt, words.txt, train/<wnid>/images/*.JPEG + <wnid>_boxes.txt, "
            "val/images + val/val_annotations.txt, test/images")


def _required_text(tree: FileTree, name: str) -> str:
    if not tree.has_file(name):
        raise DataError(tree.where(name), f"missing ({EXPECTED})")
    return tree.read_text(name)


def _box(fields: list[str], where: str, line_no: int) -> tuple[int, int, int, int]:
    box = tuple(ascii_int(v) for v in fields)
    if None in box:
        raise DataError(where, f"line {line_no}: box {fields} is not four integers")
    return check_box(box, where, line_no)


def parse_wnids(text: str, where: str) -> list[str]:
    wnids = [line.strip() for line in text_lines(text) if line.strip()]
    if len(set(wnids)) != len(wnids):
        raise DataError(where, "repeated WNIDs (expected each class once)")
    if not wnids:
        raise DataError(where, "no WNIDs (expected one WNID a line)")
    return wnids


def parse_words(text: str) -> dict[str, str]:
    """`WNID<TAB>words` lines as a dict."""
    words = {}
    for line in text_lines(text):
        wnid, _, text_ = line.partition("\t")
        if wnid:
            words[wnid] = text_.strip()
    return words


def parse_boxes(text: str, where: str) -> dict[str, tuple[int, int, int, int]]:
    """A `<wnid>_boxes.txt`: image name -> box; an image named twice is an error."""
    boxes = {}
    for line_no, line in enumerate(text_lines(text), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            raise DataError(where, f"line {line_no}: expected NAME x0 y0 x1 y1, got {line!r}")
        if fields[0] in boxes:
            raise DataError(where, f"line {line_no}: image {fields[0]} appears twice (expected one box per image)")
        boxes[fields[0]] = _box(fields[1:], where, line_no)
    return boxes


def parse_val_annotations(text: str, where: str) -> list[tuple[str, str, tuple[int, int, int, int]]]:
    """`val_annotations.txt` as (image name, WNID, box) rows; an image named twice is an error."""
    rows, names = [], set()
    for line_no, line in enumerate(text_lines(text), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise DataError(where, f"line {line_no}: expected NAME WNID x0 y0 x1 y1, got {line!r}")
        if fields[0] in names:
            raise DataError(where, f"line {line_no}: image {fields[0]} appears twice (expected one label per image)")
        names.add(fields[0])
        rows.append((fields[0], fields[1], _box(fields[2:], where, line_no)))
    return rows


def _read_train(tree, root, wnids, index, skipped) -> list[ImageRecord]:
    images, boxes_files = defaultdict(list), {}
    prefix = f"{root}train/"
    for name in tree.names(prefix):
        parts = name[len(prefix):].split("/")
        if len(parts) == 3 and parts[1] == "images" and is_image_name(parts[2]):
            images[parts[0]].append(name)
        elif len(parts) == 2 and parts[1] == f"{parts[0]}_boxes.txt":
            boxes_files[parts[0]] = name
        else:
            skipped["train: files outside <wnid>/images and <wnid>_boxes.txt"] += 1
    records, no_boxes = [], []
    for wnid in wnids:
        if not images[wnid]:
            continue
        boxes_name = boxes_files.get(wnid)
        if boxes_name is None:
            no_boxes.append(wnid)
        boxes = parse_boxes(tree.read_text(boxes_name), tree.where(boxes_name)) if boxes_name else {}
        present = set()
        for name in images[wnid]:
            base = name.rsplit("/", 1)[1]
            present.add(base)
            box = boxes.get(base)
            if box is None:
                skipped["train: images without a box line (kept, no box)"] += 1
            records.append(ImageRecord(name, index[wnid], wnid, {"box": box} if box else {}))
        skipped["train: box lines naming a missing image"] += len(set(boxes) - present)
    if no_boxes:
        skipped[f"train: classes without a <wnid>_boxes.txt ({_shown(no_boxes)})"] += len(no_boxes)
    skipped["train: images in class folders not in wnids.txt"] += sum(
        len(names) for wnid, names in images.items() if wnid not in index)
    return records


def _read_val(tree, root, index, skipped) -> list[ImageRecord]:
    where = tree.where(f"{root}val/val_annotations.txt")
    rows = parse_val_annotations(_required_text(tree, f"{root}val/val_annotations.txt"), where)
    present = {n.rsplit("/", 1)[1] for n in tree.names(f"{root}val/images") if is_image_name(n)}
    records, annotated = [], set()
    for name, wnid, box in rows:
        annotated.add(name)
        if wnid not in index:
            skipped["val: annotations with a WNID not in wnids.txt"] += 1
        elif name not in present:
            skipped["val: annotations naming a missing image"] += 1
        else:
            records.append(ImageRecord(f"{root}val/images/{name}", index[wnid], wnid, {"box": box}))
    skipped["val: images without an annotation"] += len(present - annotated)
    return records


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def _in_layout(name: str) -> bool:
    """Whether `name` (relative to the dataset root) is a file of the layout above."""
    parts = name.split("/")
    return (name in ("wnids.txt", "words.txt", "val/val_annotations.txt") or parts[0] == "train"
            or (len(parts) == 3 and parts[0] in ("val", "test") and parts[1] == "images" and is_image_name(name)))


def read_tiny_imagenet(raw, empty_classes: str = "error", subset: int | None = None) -> LayoutReading:
    """Read train, val and test records of a Tiny ImageNet zip or folder (labels: sorted WNIDs).
    With `subset`, only the first that many images of each class (LayoutReading.keep_first).
    Images are not decoded: the cache step's decode checks them (scripts/tiny_to_array.py)."""
    tree = open_tree(raw)
    root = tree.find_root("wnids.txt", EXPECTED)
    wnids = parse_wnids(_required_text(tree, root + "wnids.txt"), tree.where(root + "wnids.txt"))
    all_words = parse_words(_required_text(tree, root + "words.txt"))
    for folder in ("train", "val/images", "test/images"):
        if not tree.has_dir(root + folder):
            raise DataError(tree.where(root + folder + "/"), f"missing folder ({EXPECTED})")
    classes = sorted(wnids)
    index = {wnid: i for i, wnid in enumerate(classes)}
    skipped: Counter = Counter()
    train = _read_train(tree, root, wnids, index, skipped)
    val = _read_val(tree, root, index, skipped)
    test = [ImageRecord(n, UNLABELLED, "") for n in tree.names(f"{root}test/images") if is_image_name(n)]
    skipped["words.txt: wnids without words"] += sum(w not in all_words for w in wnids)
    outside = [n for n in tree.names(root) if not _in_layout(n[len(root):])]
    if outside:
        skipped[f"files outside the layout, ignored ({_shown(outside)})"] += len(outside)
    reading = LayoutReading(classes, {"train": Split(tree, train), "val": Split(tree, val),
                                      "test": Split(tree, test)},
                            +skipped)
    reading.keep_first(subset)
    reading.check_classes_used("train", tree.where(root + "train/"), empty_classes)
    return reading
