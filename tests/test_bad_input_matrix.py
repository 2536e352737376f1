"""The bad-input matrix: broken and hostile inputs against the real command-line entry points.

One table, CASES: (case id, a builder that makes the input from the shared demo fixture and
returns the CLI command, the expected outcome). Outcomes: ("error", regex) = exit 1 and the
regex in stderr (one clear line naming the file); ("skip", regex) = exit 0 and the regex in
the report (a counted skip); ("ok", regex) = exit 0 and the regex in stdout (a BOM/CRLF twin
of a valid file reads as the plain file: same counts, same classes). Covers the layout
readers of all five recipes, the archive extractor, the RecordIO reader and writer, and
the map, index and reorg writers.
"""
import gzip
import io
import os
import re
import struct
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from e2e import ROOT, cli_env
from imgdag.demo.dog_breed import make_demo_dog_breed
from imgdag.demo.ilsvrc import make_demo_ilsvrc_val
from imgdag.demo.imagenet import make_demo_imagenet8
from imgdag.demo.mnist import make_demo_mnist
from imgdag.demo.tiny_imagenet import make_demo_tiny_imagenet
from imgdag.extract import extract_archive
from imgdag.formats.cntk_map import read_cntk_map
from imgdag.formats.lst import LstEntry, list_image_folder, read_lst, write_lst
from imgdag.formats.recordio import IRHeader, RecordReader, pack_record
from imgdag.formats.recordio_packer import pack
from imgdag.formats.recordio_writer import RecordWriter
from imgdag.layouts.mnist_idx import IMAGES_MAGIC

BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The demo inputs every case starts from (built once)."""
    b = tmp_path_factory.mktemp("matrix")
    make_demo_imagenet8(b / "in8")
    extract_archive(b / "in8/imagenet-8.tar", b / "in8/x")
    make_demo_tiny_imagenet(b / "tiny")
    extract_archive(b / "tiny/tiny-imagenet-200.zip", b / "tiny/x")
    make_demo_dog_breed(b / "dog")
    make_demo_ilsvrc_val(b / "ilsvrc")
    extract_archive(b / "ilsvrc/ILSVRC2012_img_val.tar", b / "ilsvrc/x")
    make_demo_mnist(b / "mnist", train_copies=1)
    rng = np.random.default_rng(0)
    entries = []
    for i in range(6):
        name = f"c{i % 2}/{i}.png"
        (b / "imgs" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(b / "imgs" / name)
        entries.append(LstEntry(i, (float(i % 2),), name))
    write_lst(b / "rec/good.lst", entries)
    pack(b / "rec/good.lst", b / "imgs", b / "rec/good.rec", b / "rec/good.idx")
    return b


# --- helpers that make a case's input -------------------------------------------------------

def copy(b, t, name):
    shutil.copytree(b / name, t / name)
    return t / name


def bom_crlf(path, bom=True, crlf=True):
    data = path.read_bytes()
    path.write_bytes((BOM if bom else b"") + (data.replace(b"\n", b"\r\n") if crlf else data))


def latin1_at_line(path, line):
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = b"\xe9" + lines[line - 1]
    path.write_bytes(b"\n".join(lines))


def set_line(path, line, text):
    lines = path.read_text().split("\n")
    lines[line - 1] = text
    path.write_text("\n".join(lines))


def tar_with(path, name, data=b"x", link=None):
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo(name)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, link
            tf.addfile(info)
        else:
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def zip_with(path, name, data=b"x", symlink=False):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        if symlink:
            info.create_system, info.external_attr = 3, (0o120777 << 16)
        zf.writestr(info, data)
    return path


ZEROS = bytes(20 * 2**20)  # deflates ~1000x


def in8(b, t, *extra):
    return ["write_cntk_maps.py", "--raw", t / "in8", "--out", t / "out", *extra]


def in8_case(mutate, *extra):
    def build(b, t):
        shutil.copytree(b / "in8/x", t / "in8")
        mutate(t / "in8", t)
        return in8(b, t, *extra)
    return build


def classes_file(mutate):
    def build(b, t):
        shutil.copytree(b / "in8/x", t / "in8")
        classes = t / "classes.txt"
        classes.write_text("".join(f"{d.name}\n" for d in sorted((t / "in8/train").iterdir())))
        mutate(classes)
        return in8(b, t, "--classes", classes)
    return build


def empty_folder(root, t):
    shutil.rmtree(root / "train/n01443537")
    (root / "train/n01443537").mkdir()


def only_notes(root, t):
    shutil.rmtree(root / "train/n01443537")
    (root / "train/n01443537").mkdir()
    (root / "train/n01443537/notes.txt").write_text("no images")


def tiny(b, t, mutate, script="write_tiny_index.py"):
    root = copy(b, t, "tiny/x") / "tiny-imagenet-200"
    mutate(root, t)
    return [script, "--raw", t / "tiny/x", "--out", t / "out"]


def tiny_case(mutate):
    return lambda b, t: tiny(b, t, mutate)


def first_boxes(root):
    return sorted(root.glob("train/*/*_boxes.txt"))[0]


def box_line(fields):
    def mutate(root, t):
        path = first_boxes(root)
        name = path.read_text().split("\t", 1)[0]
        set_line(path, 1, "\t".join([name, *fields]))
    return mutate


def tiny_zip(mutate_zip):
    def build(b, t):
        archive = t / "tiny.zip"
        shutil.copy(b / "tiny/tiny-imagenet-200.zip", archive)
        with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as zf:
            mutate_zip(zf)
        return ["write_tiny_index.py", "--raw", archive, "--out", t / "out"]
    return build


def tiny_array(mutate_image=None, mutate_index=None, *extra):
    """Index the demo, then break an image or the index, then decode with tiny_to_array.py."""
    def build(b, t):
        root = copy(b, t, "tiny/x")
        subprocess.run([sys.executable, ROOT / "scripts/write_tiny_index.py", "--raw", root, "--out",
                        t / "index"], env=cli_env(), check=True, capture_output=True)
        index = t / "index/val.csv"
        if mutate_image:
            name = index.read_text().splitlines()[1].split(",")[0]
            mutate_image(root / name)
        if mutate_index:
            mutate_index(index)
        return ["tiny_to_array.py", "--raw", root, "--index", index, "--out", t / "cache/val", *extra]
    return build


def dog_case(mutate):
    def build(b, t):
        root = copy(b, t, "dog")
        mutate(root)
        return ["reorg_dog_breed.py", "--raw", root, "--out", t / "out"]
    return build


def drop_breed(root):
    lines = (root / "labels.csv").read_text().splitlines()
    gone = lines[1].split(",")[1]
    (root / "labels.csv").write_text("\n".join(x for x in lines if not x.endswith("," + gone)) + "\n")


def unknown_breed(root):
    lines = (root / "labels.csv").read_text().splitlines()
    lines[1] = lines[1].split(",")[0] + ",not_a_breed"
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def dup_submission_column(root):
    lines = (root / "sample_submission.csv").read_text().splitlines()
    header = lines[0].split(",")
    header[2] = header[1]
    lines[0] = ",".join(header)
    (root / "sample_submission.csv").write_text("\n".join(lines) + "\n")


def ilsvrc_case(mutate):
    def build(b, t):
        root = copy(b, t, "ilsvrc/caffe_ilsvrc12")
        mutate(root)
        return ["write_ilsvrc_val_table.py", "--caffe-val", root / "val.txt", "--synset-words",
                root / "synset_words.txt", "--out", t / "val.csv"]
    return build


def extract_case(make):
    def build(b, t):
        return ["extract_archive.py", "--archive", make(t), "--out", t / "out"]
    return build


def tgz_bomb(t):
    with tarfile.open(t / "bomb.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("top/zeros.bin")
        info.size = len(ZEROS)
        tf.addfile(info, io.BytesIO(ZEROS))
    return t / "bomb.tar.gz"


def written(path, data):
    path.write_bytes(data)
    return path


def truncated_tar(t):
    shutil.copy(tar_with(t / "a.tar", "top/a.bin", bytes(5000)), t / "cut.tar")
    (t / "cut.tar").write_bytes((t / "a.tar").read_bytes()[:1500])
    return t / "cut.tar"


def rec_case(mutate_rec=None, mutate_idx=None, idx=True):
    def build(b, t):
        copy(b, t, "rec")
        if mutate_rec:
            mutate_rec(t / "rec/good.rec")
        if mutate_idx:
            mutate_idx(t / "rec/good.idx")
        return ["rec_to_array.py", "--rec", t / "rec/good.rec", *(["--idx", t / "rec/good.idx"] if idx else []),
                "--out", t / "cache"]
    return build


def patch(offset, data):
    def mutate(path):
        raw = bytearray(path.read_bytes())
        raw[offset:offset + len(data)] = data
        path.write_bytes(bytes(raw))
    return mutate


def truncate(path):
    path.write_bytes(path.read_bytes()[:-10])


def not_image_rec(b, t):
    with RecordWriter(t / "bad.rec", t / "bad.idx") as writer:
        writer.write(0, pack_record(IRHeader(0, 1.0, 0, 0), None, b"this payload is not an image"))
    return ["rec_to_array.py", "--rec", t / "bad.rec", "--idx", t / "bad.idx", "--out", t / "cache"]


def idx_line(line, text):
    return lambda path: set_line(path, line, text)


def make_rec_case(mutate_lst, *flags):
    def build(b, t):
        copy(b, t, "imgs")
        shutil.copy(b / "rec/good.lst", t / "list.lst")
        mutate_lst(t)
        return ["make_rec.py", t / "list.lst", t / "imgs", *flags, "--rec", t / "o.rec", "--idx", t / "o.idx"]
    return build


def truncate_png(t):
    path = t / "imgs/c0/0.png"
    path.write_bytes(path.read_bytes()[:30])


def mnist_case(mutate):
    def build(b, t):
        root = copy(b, t, "mnist")
        mutate(root)
        return ["mnist_to_pngs.py", "--raw", root, "--split", "test", "--out-dir", t / "png/test", "--lst",
                t / "test.lst"]
    return build


def cut_gz(root):
    path = root / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])


def train_labels_out_of_range(b, t):
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("val", 8)):
        np.save(t / f"{split}.images.npy", rng.integers(0, 256, (n, 28, 28, 1), np.uint8))
        labels = rng.integers(0, 10, n)
        labels[5] = 10 if split == "train" else labels[5]
        np.save(t / f"{split}.labels.npy", labels.astype(np.int64))
    params = ('{"model": "lenet5", "num_classes": 10, "epochs": 1, "batch_size": 8, "optimizer": "sgd", '
              '"lr": 0.01, "seed": 0, "checkpoint_every": 1, "device": "cpu", '
              '"normalize": {"mean": [0.5], "std": [0.25]}}')
    return ["train.py", "--train-cache", t / "train", "--val-cache", t / "val", "--params", params,
            "--model-out", t / "m.pt", "--log-csv", t / "log.csv", "--checkpoint-dir", t / "ck"]


def tar_twice(path, name):
    """A tar holding two different files under one name."""
    with tarfile.open(path, "w") as tf:
        for data in (b"first", b"second"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def in8_tar_twice(b, t):
    tar = t / "in8.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(b / "in8/x", arcname=".")
        first = next(p for p in sorted((b / "in8/x").rglob("*.JPEG")))
        tf.add(sorted((b / "in8/x").rglob("*.JPEG"))[1], arcname=first.relative_to(b / "in8/x").as_posix())
    return ["write_cntk_maps.py", "--raw", tar, "--out", t / "out"]


def name_not_utf8(root, t):
    folder = sorted((root / "train").iterdir())[0]
    shutil.copy(sorted(folder.iterdir())[0], folder / os.fsdecode(b"bad\xff.JPEG"))


def special_files(root, t):
    folder = sorted((root / "train").iterdir())[0]
    os.mkfifo(folder / "pipe.JPEG")
    os.symlink("loop.JPEG", folder / "loop.JPEG")  # a link to itself: ELOOP


def other_formats(root, t):
    folder = sorted((root / "train").iterdir())[0]
    for suffix in (".webp", ".gif", ".bmp", ".tiff"):
        Image.new("RGB", (8, 8)).save(folder / f"extra{suffix}")


def case_twins(root, t):
    folder = sorted((root / "train").iterdir())[0]
    shutil.copytree(folder, folder.with_name(folder.name.upper()))


def tiny_junk(root, t):
    for name in ("README.txt", "val/notes.txt", "test/x.txt"):
        (root / name).write_text("junk")


def lst_line(line, text, *flags):
    return make_rec_case(lambda t: set_line(t / "list.lst", line, text), *flags)


def float_label_rec(b, t):
    image = RecordReader(b / "rec/good.rec")[0].image
    with RecordWriter(t / "f.rec", t / "f.idx") as writer:
        writer.write(0, pack_record(IRHeader(0, 1.5, 0, 0), None, image))
    return ["rec_to_array.py", "--rec", t / "f.rec", "--idx", t / "f.idx", "--out", t / "cache"]


def swap_idx_lines(path):
    lines = path.read_text().split("\n")
    lines[1], lines[2] = lines[2], lines[1]
    path.write_text("\n".join(lines))


def zero_pixel_images(root):
    count = len(gzip.decompress((root / "t10k-labels-idx1-ubyte.gz").read_bytes())) - 8
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(struct.pack(">IIII", IMAGES_MAGIC, count, 0, 0)))


BOMB_MEMBER = gzip.compress(bytes(64 * 2**20), compresslevel=9)  # 64 MiB of zeros in ~64 KiB


def gzip_bomb(path, count):
    """A real gzip bomb: an idx header claiming `count` 28x28 images, then 32 gzip members of
    64 MiB of zeros each (gzip readers join members): ~2 MiB that inflates to 2 GiB."""
    path.write_bytes(gzip.compress(struct.pack(">IIII", IMAGES_MAGIC, count, 28, 28)) + BOMB_MEMBER * 32)
    return path


# --- images that do not decode, through every conversion step (checks.bad_images) ------------

BAD_JPEGS = {  # how an image file is broken
    "truncated": lambda data: data[: len(data) // 2],
    "zero-byte": lambda data: b"",
    "garbage": lambda data: b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(0).integers(0, 256, 600, np.uint8)),
}


def break_image(path, kind):
    path.write_bytes(BAD_JPEGS[kind](path.read_bytes()))


def bad_in8(kind, mode):
    """The first train JPEG of the imagenet-8 folders broken, then the CNTK map writer."""
    return in8_case(lambda r, t: break_image(sorted(r.glob("train/*/*.JPEG"))[0], kind),
                    "--bad-images", mode, "--workers", "2")


def bad_tiny(kind, mode):
    """The first val JPEG of the Tiny ImageNet val table broken, then its cache (whose decode is the check)."""
    return tiny_array(lambda path: break_image(path, kind), None, "--bad-images", mode, "--workers", "2")


def bad_dog(kind, mode):
    """Dog-breed train images as a folder (not the zip), the first broken, then the reorg."""
    def mutate(root):
        with zipfile.ZipFile(root / "train.zip") as zf:
            zf.extractall(root)
        (root / "train.zip").unlink()
        break_image(sorted(root.glob("train/*.jpg"))[0], kind)
    return lambda b, t: [*dog_case(mutate)(b, t), "--bad-images", mode, "--workers", "2"]


def bad_ilsvrc(kind, mode):
    """The first ILSVRC val JPEG broken, then the val table of the present images."""
    def build(b, t):
        images = copy(b, t, "ilsvrc/x")
        break_image(sorted(images.rglob("*.JPEG"))[0], kind)
        return [*ilsvrc_case(lambda r: None)(b, t), "--images", images, "--bad-images", mode]
    return build


def bad_rec(kind, mode):
    """A .lst of the imagenet-8 train folders packed as they are (pass-through), one JPEG broken."""
    def build(b, t):
        root = copy(b, t, "in8/x")
        write_lst(t / "train.lst", list_image_folder(root / "train", recursive=True))
        break_image(sorted(root.glob("train/*/*.JPEG"))[0], kind)
        return ["make_rec.py", t / "train.lst", root / "train", "--pass-through", "--num-workers", "2",
                "--bad-images", mode, "--rec", t / "o.rec"]
    return build


NAMED = r"(?s:.*)/n\d+_\d+\.JPEG: not a decodable image"  # the skip warning names the file
BAD_IMAGE_ROUTES = {  # route: (builder, the counted skip, the error naming the file)
    "in8-map": (bad_in8, r"skipped: 1 train: images that do not decode" + NAMED,
                r"in8/train/n\d+/n\d+_\d+\.JPEG: not a decodable image"),
    "tiny-cache": (bad_tiny, r"skipped: 1 images that do not decode" + r"(?s:.*)val_\d+\.JPEG: not a decodable",
                   r"val/images/val_\d+\.JPEG: not a decodable image"),
    "dog-reorg": (bad_dog, r"; skipped: 1 train: images that do not decode(?s:.*)/train/\w+\.jpg: not a decodable",
                  r"dog/train/\w+\.jpg: not a decodable image"),
    "ilsvrc-val-table": (bad_ilsvrc, r"; skipped: 1 val: images that do not decode(?s:.*)"
                                     r"ILSVRC2012_val_\d+\.JPEG: not a decodable",
                         r"x/ILSVRC2012_val_\d+\.JPEG: not a decodable image"),
    "rec-pass-through": (bad_rec, r"skipped 1 corrupt(?s:.*)/n\d+_\d+\.JPEG \(corrupt: not a decodable image",
                         r"train/n\d+/n\d+_\d+\.JPEG: not a decodable image"),
}
BAD_IMAGE_CASES = [(f"{route}-{kind}-jpeg-{mode}", build(kind, mode), ("skip", skip) if mode == "skip" else ("error", error))
                   for route, (build, skip, error) in BAD_IMAGE_ROUTES.items()
                   for kind in BAD_JPEGS for mode in ("skip", "error")]

IN8_OK = r"train_map.txt 320 lines, val_map.txt 80 lines, 8 classes; skipped: none"
TINY_SKIP = r"49 images .* skipped: 1 images that do not decode(?s:.*)val_\d+\.JPEG: not a decodable image"
TINY_OK = r"train.csv 300 rows, val.csv 50 rows, test.csv 20 rows, 10 classes \(sorted WNIDs\); skipped: none"
DOG_OK = r"train 58, valid 6, train_valid 64, test 20; .* 6 classes; skipped: none"
ILSVRC_OK = r"96 rows from the caffe val.txt, 1000 classes; skipped: none"

CASES = [
    # --- imagenet8_alexnet: class folders -> CNTK maps ---------------------------------------
    ("in8-empty-class-folder", in8_case(empty_folder),
     ("error", r"train: 1 classes of the class list have no usable train image \(n01443537\)")),
    ("in8-class-folder-only-non-images", in8_case(only_notes), ("error", r"no usable train image \(n01443537\)")),
    ("in8-empty-class-kept-by-option", in8_case(empty_folder, "--empty-classes", "keep"),
     ("skip", r"1 train: classes without a usable image, label index kept \(n01443537\)")),
    ("in8-classes-bom-crlf", classes_file(bom_crlf), ("ok", IN8_OK)),
    ("in8-classes-not-utf8", classes_file(lambda p: latin1_at_line(p, 3)),
     ("error", r"classes.txt: line 3: not UTF-8")),
    ("in8-classes-repeated", classes_file(lambda p: p.write_text(p.read_text() + p.read_text().split()[0] + "\n")),
     ("error", r"classes.txt: a class appears twice")),
    ("in8-classes-missing", in8_case(lambda r, t: None, "--classes", "nope.txt"),
     ("error", r"nope.txt: missing \(expected one class name a line\)")),
    ("in8-unknown-wnid-in-validation",
     in8_case(lambda r, t: shutil.copytree(r / "validation/n01514668", r / "validation/n09999999")),
     ("skip", r"validation: images of 1 classes not in the class list \(n09999999\)")),
    ("in8-no-validation", in8_case(lambda r, t: shutil.rmtree(r / "validation")),
     ("error", r"in8/validation: missing or empty validation/ folder")),
    ("in8-no-train", in8_case(lambda r, t: shutil.rmtree(r / "train")), ("error", r"no train found")),
    ("in8-tar-traversal",
     lambda b, t: ["write_cntk_maps.py", "--raw", tar_with(t / "a.tar", "train/../../evil.JPEG"), "--out", t / "o"],
     ("error", r"a.tar: member 'train/../../evil.JPEG': '..' in path refused")),
    ("in8-tar-absolute",
     lambda b, t: ["write_cntk_maps.py", "--raw", tar_with(t / "a.tar", "/train/n1/x.JPEG"), "--out", t / "o"],
     ("error", r"a.tar: member '/train/n1/x.JPEG': absolute path refused")),
    # --- tiny_imagenet_resnet18: wnids, words, boxes, val annotations -> index tables --------
    ("tiny-wnids-bom", tiny_case(lambda r, t: bom_crlf(r / "wnids.txt", crlf=False)), ("ok", TINY_OK)),
    ("tiny-wnids-crlf", tiny_case(lambda r, t: bom_crlf(r / "wnids.txt", bom=False)), ("ok", TINY_OK)),
    ("tiny-val-annotations-bom-crlf", tiny_case(lambda r, t: bom_crlf(r / "val/val_annotations.txt")),
     ("ok", TINY_OK)),
    ("tiny-boxes-bom-crlf", tiny_case(lambda r, t: bom_crlf(first_boxes(r))), ("ok", TINY_OK)),
    ("tiny-words-bom", tiny_case(lambda r, t: bom_crlf(r / "words.txt")), ("ok", TINY_OK)),
    ("tiny-boxes-not-utf8", tiny_case(lambda r, t: latin1_at_line(first_boxes(r), 2)),
     ("error", r"_boxes.txt: line 2: not UTF-8")),
    ("tiny-wnids-not-utf8", tiny_case(lambda r, t: latin1_at_line(r / "wnids.txt", 4)),
     ("error", r"wnids.txt: line 4: not UTF-8")),
    ("tiny-box-negative", tiny_case(box_line(["-1", "2", "30", "40"])),
     ("error", r"_boxes.txt: line 1: box \(-1, 2, 30, 40\) is not inside the 64x64 image")),
    ("tiny-box-inverted", tiny_case(box_line(["30", "2", "10", "40"])),
     ("error", r"_boxes.txt: line 1: box \(30, 2, 10, 40\) is not inside")),
    ("tiny-box-past-the-edge", tiny_case(box_line(["0", "0", "64", "63"])),
     ("error", r"_boxes.txt: line 1: box \(0, 0, 64, 63\) is not inside")),
    ("tiny-box-not-integers", tiny_case(box_line(["0", "0", "x", "63"])),
     ("error", r"_boxes.txt: line 1: box .* is not four integers")),
    ("tiny-val-box-out-of-range",
     tiny_case(lambda r, t: set_line(r / "val/val_annotations.txt", 2, "\t".join(
         (r / "val/val_annotations.txt").read_text().split("\n")[1].split("\t")[:2] + ["5", "5", "99", "9"]))),
     ("error", r"val_annotations.txt: line 2: box \(5, 5, 99, 9\) is not inside")),
    ("tiny-val-unknown-wnid",
     tiny_case(lambda r, t: set_line(r / "val/val_annotations.txt", 1, "\t".join(
         [(r / "val/val_annotations.txt").read_text().split("\t")[0], "n99999999", "0", "0", "1", "1"]))),
     ("skip", r"1 val: annotations with a WNID not in wnids.txt")),
    ("tiny-wnid-without-train-images",
     tiny_case(lambda r, t: shutil.rmtree(r / "train" / (r / "wnids.txt").read_text().split()[0])),
     ("error", r"tiny-imagenet-200/train: 1 classes of the class list have no usable train image")),
    ("tiny-repeated-wnid", tiny_case(lambda r, t: (r / "wnids.txt").write_text(
        (r / "wnids.txt").read_text() + (r / "wnids.txt").read_text().split()[0] + "\n")),
     ("error", r"wnids.txt: repeated WNIDs")),
    ("tiny-missing-words", tiny_case(lambda r, t: (r / "words.txt").unlink()), ("error", r"words.txt: missing")),
    ("tiny-zip-bomb", tiny_zip(lambda zf: zf.writestr("tiny-imagenet-200/zeros.bin", ZEROS)),
     ("error", r"tiny.zip: member 'tiny-imagenet-200/zeros.bin': expands \d+x .* ratio cap")),
    ("tiny-zip-traversal", tiny_zip(lambda zf: zf.writestr("../evil.txt", b"x")),
     ("error", r"tiny.zip: member '../evil.txt': '..' in path refused")),
    # --- Tiny ImageNet index tables -> array cache --------------------------------------------
    ("tiny-index-bom-crlf", tiny_array(mutate_index=bom_crlf), ("ok", r"50 images .* decoded into")),
    ("tiny-index-box-out-of-range",
     tiny_array(mutate_index=lambda p: set_line(p, 2, ",".join(p.read_text().split("\n")[1].split(",")[:3]
                                                               + ["0", "0", "70", "10"]))),
     ("error", r"val.csv: line 2: box \(0, 0, 70, 10\) is not inside")),
    ("tiny-index-label-below-unlabelled",
     tiny_array(mutate_index=lambda p: set_line(p, 2, ",".join(
         [p.read_text().split("\n")[1].split(",")[0], "-2"] + p.read_text().split("\n")[1].split(",")[2:]))),
     ("error", r"val.csv: line 2: label -2")),
    ("tiny-index-not-utf8", tiny_array(mutate_index=lambda p: latin1_at_line(p, 3)),
     ("error", r"val.csv: line 3: not UTF-8")),
    # checks.bad_images' default (skip) when no --bad-images is given
    ("tiny-truncated-jpeg", tiny_array(mutate_image=lambda p: p.write_bytes(p.read_bytes()[:200])),
     ("skip", TINY_SKIP)),
    ("tiny-zero-byte-jpeg", tiny_array(mutate_image=lambda p: p.write_bytes(b"")), ("skip", TINY_SKIP)),
    ("tiny-garbage-jpeg", tiny_array(mutate_image=lambda p: p.write_bytes(b"GIF89a garbage" * 20)),
     ("skip", TINY_SKIP)),
    # --- dog_breed_transfer: labels.csv, sample_submission.csv, zips -> class folders ---------
    ("dog-labels-bom", dog_case(lambda r: bom_crlf(r / "labels.csv", crlf=False)), ("ok", DOG_OK)),
    ("dog-labels-crlf", dog_case(lambda r: bom_crlf(r / "labels.csv", bom=False)), ("ok", DOG_OK)),
    ("dog-submission-bom-crlf", dog_case(lambda r: bom_crlf(r / "sample_submission.csv")), ("ok", DOG_OK)),
    ("dog-labels-not-utf8", dog_case(lambda r: latin1_at_line(r / "labels.csv", 5)),
     ("error", r"labels.csv: line 5: not UTF-8")),
    ("dog-labels-repeated-id",
     dog_case(lambda r: (r / "labels.csv").write_text((r / "labels.csv").read_text()
                                                      + (r / "labels.csv").read_text().splitlines()[1] + "\n")),
     ("error", r"labels.csv: line \d+: id \w+ appears twice")),
    ("dog-labels-bad-header", dog_case(lambda r: set_line(r / "labels.csv", 1, "file,label")),
     ("error", r"labels.csv: header .* \(expected id,breed\)")),
    ("dog-unknown-breed", dog_case(unknown_breed), ("skip", r"1 train: images of a breed not in sample_submission")),
    ("dog-breed-without-train-images", dog_case(drop_breed),
     ("error", r"1 classes of the class list have no usable train image")),
    ("dog-submission-repeated-breed", dog_case(dup_submission_column),
     ("error", r"sample_submission.csv: a breed column appears twice")),
    ("dog-train-zip-traversal", dog_case(lambda r: zip_with(r / "train.zip", "train/../../evil.jpg")),
     ("error", r"train.zip: member 'train/../../evil.jpg': '..' in path refused")),
    # --- ilsvrc_alexnet_eval: Caffe val.txt + synset_words.txt -> val table -------------------
    ("ilsvrc-synset-words-bom-crlf", ilsvrc_case(lambda r: bom_crlf(r / "synset_words.txt")), ("ok", ILSVRC_OK)),
    ("ilsvrc-val-bom-crlf", ilsvrc_case(lambda r: bom_crlf(r / "val.txt")), ("ok", ILSVRC_OK)),
    ("ilsvrc-val-not-utf8", ilsvrc_case(lambda r: latin1_at_line(r / "val.txt", 7)),
     ("error", r"val.txt: line 7: not UTF-8")),
    ("ilsvrc-val-label-out-of-range",
     ilsvrc_case(lambda r: set_line(r / "val.txt", 3, (r / "val.txt").read_text().split("\n")[2].split()[0] + " 1000")),
     ("error", r"val.txt: row 3 \(\S+\): label 1000 but .* has 1000 classes")),
    ("ilsvrc-synset-words-bad-line", ilsvrc_case(lambda r: set_line(r / "synset_words.txt", 2, "cat words")),
     ("error", r"synset_words.txt: line 2: 'cat words' does not start with a WNID")),
    # --- the archive extractor -----------------------------------------------------------------
    ("extract-tar-traversal", extract_case(lambda t: tar_with(t / "a.tar", "top/../../evil")),
     ("error", r"a.tar: member 'top/../../evil': '..' in path refused")),
    ("extract-zip-traversal", extract_case(lambda t: zip_with(t / "a.zip", "../evil")),
     ("error", r"a.zip: member '../evil': '..' in path refused")),
    ("extract-tar-absolute", extract_case(lambda t: tar_with(t / "a.tar", "/etc/evil")),
     ("error", r"a.tar: member '/etc/evil': absolute path refused")),
    ("extract-tar-symlink-escape", extract_case(lambda t: tar_with(t / "a.tar", "top/link", link="/etc/passwd")),
     ("error", r"a.tar: member 'top/link': refused")),
    ("extract-zip-symlink-escape",
     extract_case(lambda t: zip_with(t / "a.zip", "top/link", b"../../etc/passwd", symlink=True)),
     ("error", r"a.zip: member 'top/link': symlink to '../../etc/passwd' leaves the output")),
    ("extract-zip-bomb", extract_case(lambda t: zip_with(t / "bomb.zip", "top/zeros.bin", ZEROS)),
     ("error", r"bomb.zip: member 'top/zeros.bin': expands \d+x .*over the 100x ratio cap")),
    ("extract-tar-gz-bomb", extract_case(tgz_bomb),
     ("error", r"bomb.tar.gz: member 'top/zeros.bin': the files total \d+ bytes, over 100x the archive")),
    ("extract-truncated-tar", extract_case(truncated_tar), ("error", r"cut.tar: corrupt or truncated tar")),
    ("extract-not-an-archive", extract_case(lambda t: written(t / "x.tar", b"hello")),
     ("error", r"x.tar: not a tar or zip archive")),
    # --- RecordIO reader (.rec + .idx -> array cache) -------------------------------------------
    ("rec-truncated", rec_case(truncate), ("error", r"good.rec.*truncated")),
    ("rec-truncated-no-idx", rec_case(truncate, idx=False), ("error", r"good.rec: truncated")),
    ("rec-bad-magic", rec_case(patch(0, b"\0\0\0\0"), idx=False),
     ("error", r"good.rec: bad magic 0x00000000 at byte offset 0")),
    ("rec-bad-cflag", rec_case(patch(7, bytes([2 << 5])), idx=False),
     ("error", r"good.rec: part at byte offset 0 has cflag 2, expected 0 or 1")),
    pytest.param("rec-payload-not-an-image", not_image_rec, ("error", r"bad.rec record 0")),
    ("rec-idx-offset-past-the-end", rec_case(mutate_idx=idx_line(6, "5\t99999999")),
     ("error", r"good.idx: key 5: offset 99999999 is not a record start")),
    ("rec-idx-offset-inside-a-record", rec_case(mutate_idx=idx_line(2, "1\t8")),
     ("error", r"good.idx: key 1: .*good.rec: bad magic")),
    ("rec-idx-not-utf8", rec_case(mutate_idx=lambda p: latin1_at_line(p, 2)),
     ("error", r"good.idx: line 2: not UTF-8")),
    ("rec-idx-bad-line", rec_case(mutate_idx=idx_line(3, "two\tfields")),
     ("error", r"good.idx: line 3: expected key<TAB>offset")),
    ("rec-idx-bom-crlf", rec_case(mutate_idx=bom_crlf), ("ok", r"6 images decoded")),
    # --- RecordIO writer (.lst + images -> .rec) -----------------------------------------------
    ("lst-bom-crlf", make_rec_case(lambda t: bom_crlf(t / "list.lst")), ("ok", r"6 (records|images)")),
    ("lst-not-utf8", make_rec_case(lambda t: latin1_at_line(t / "list.lst", 2)),
     ("error", r"list.lst: line 2: not UTF-8")),
    ("lst-duplicate-index", make_rec_case(lambda t: set_line(t / "list.lst", 2, "0\t0.000000\tc1/1.png")),
     ("error", r"list.lst: index 0 appears more than once")),
    ("lst-bad-line", make_rec_case(lambda t: set_line(t / "list.lst", 2, "1 c1/1.png")),
     ("error", r"list.lst: line 2: expected index<TAB>label\(s\)<TAB>path")),
    ("lst-missing-image", make_rec_case(lambda t: (t / "imgs/c0/0.png").unlink()), ("skip", r"1 missing")),
    ("lst-truncated-png", make_rec_case(truncate_png, "--encoding", ".png"), ("skip", r"1 corrupt")),
    # --- MNIST idx -> PNGs, and training labels -------------------------------------------------
    ("mnist-truncated-gz", mnist_case(cut_gz), ("error", r"t10k-images-idx3-ubyte.gz")),
    ("mnist-missing-labels", mnist_case(lambda r: (r / "t10k-labels-idx1-ubyte.gz").unlink()),
     ("error", r"t10k-labels-idx1-ubyte")),
    ("train-cache-label-out-of-range", train_labels_out_of_range,
     ("error", r"train.labels.npy: row 6: label 10 is outside 0..9")),
    # --- issue 16: silent before ---------------------------------------------------------------
    ("lst-label-not-integer", lst_line(2, "1\t1.500000\tc1/1.png"),
     ("error", r"list.lst: line 2: label 1.5 is not an integer class label")),
    ("rec-label-not-integer", float_label_rec, ("error", r"f.rec record 0: label 1.5 is not an integer")),
    ("lst-path-absolute-checked", lst_line(2, "1\t1.000000\t/etc/passwd", "--pass-through", "--images-checked"),
     ("error", r"list.lst: line 2: path '/etc/passwd' is outside the image root")),
    ("lst-path-dotdot-checked", lst_line(2, "1\t1.000000\t../list.lst", "--pass-through", "--images-checked"),
     ("error", r"list.lst: line 2: path '../list.lst' is outside the image root")),
    ("rec-idx-repeated-offset", rec_case(mutate_idx=idx_line(2, "1\t0")),
     ("error", r"good.idx: line 2: offset 0 is not after the previous line's 0")),
    ("rec-idx-backward-offset", rec_case(mutate_idx=swap_idx_lines),
     ("error", r"good.idx: line 3: offset \d+ is not after the previous line's \d+")),
    ("extract-tar-repeated-member", extract_case(lambda t: tar_twice(t / "a.tar", "top/a.bin")),
     ("error", r"a.tar: member 'top/a.bin': appears twice")),
    ("in8-tar-repeated-member", in8_tar_twice, ("error", r"in8.tar: member '.*\.JPEG': appears twice")),
    # --- issue 16: unclear before ---------------------------------------------------------------
    ("in8-name-not-utf8", in8_case(name_not_utf8),
     ("error", r"train/n\d+/bad\\xff.JPEG: the file name is not UTF-8")),
    ("in8-name-not-utf8-workers", in8_case(name_not_utf8, "--workers", "2"),  # found as the workers check
     ("error", r"train/n\d+/bad\\xff.JPEG: the file name is not UTF-8")),
    ("lst-label-nan", lst_line(2, "1\tnan\tc1/1.png"), ("error", r"list.lst: line 2: label nan is not an integer")),
    ("lst-index-2**64", lst_line(2, "18446744073709551616\t1.000000\tc1/1.png"),
     ("error", r"list.lst: line 2: index 18446744073709551616 is outside 0..2\*\*64-1")),
    ("mnist-zero-rows-cols", mnist_case(zero_pixel_images),
     ("error", r"t10k-images-idx3-ubyte.gz: images of 0x0 pixels")),
    # --- issue 16: weak before ------------------------------------------------------------------
    ("mnist-gzip-bomb-claimed", mnist_case(lambda r: gzip_bomb(r / "t10k-images-idx3-ubyte.gz", 2_700_000)),
     ("error", r"t10k-images-idx3-ubyte.gz: header says \(2700000, 28, 28\) = 2116800000 bytes of data, "
               r"over 100x the compressed size")),
    ("mnist-gzip-bomb-trailing", mnist_case(lambda r: gzip_bomb(r / "t10k-images-idx3-ubyte.gz", 10_000)),
     ("error", r"t10k-images-idx3-ubyte.gz: header says \(10000, 28, 28\) = 7840000 bytes of data, file has more")),
    ("extract-listing-fails", lambda b, t: ["extract_archive.py", "--archive", tar_with(t / "a.tar", "top/a\nb"),
                                            "--out", t / "out", "--listing", t / "sums.txt"],
     ("error", r"a\\nb: a newline in the name cannot be listed")),
    ("in8-special-files", in8_case(special_files),
     ("skip", r"2 train: special files \(FIFO, socket, device, broken or looping link\)")),
    ("in8-other-image-formats", in8_case(other_formats),
     ("skip", r"4 train: files not in an accepted image format \(.jpeg .jpg .png\)")),
    ("in8-class-folders-differ-in-case", in8_case(case_twins),
     ("skip", r"class folders differ only in case, each a class of its own: N\d+, n\d+")),
    ("tiny-missing-boxes", tiny_case(lambda r, t: first_boxes(r).unlink()),
     ("skip", r"1 train: classes without a <wnid>_boxes.txt \(n\d+\)")),
    ("tiny-files-outside-the-layout", tiny_case(tiny_junk),
     ("skip", r"3 files outside the layout, ignored \(\S*README.txt, \S*test/x.txt, \S*val/notes.txt\)")),
    *BAD_IMAGE_CASES,
]


def _id(case):
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.slow  # about 80 CLI runs: 2-4 minutes on 2 cores
@pytest.mark.parametrize("case_id, build, expected", CASES, ids=[_id(c) for c in CASES])
def test_bad_input(base, tmp_path, case_id, build, expected):
    command = build(base, tmp_path)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / command[0]), *map(str, command[1:])],
                          cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    kind, pattern = expected
    if kind == "error":
        assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
        assert "error: " in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
        message = done.stderr.rsplit("error: ", 1)[1].strip()  # after any progress bar
        assert "\n" not in message and re.search(pattern, message), message
    else:
        assert done.returncode == 0, done.stderr[-2000:]
        assert re.search(pattern, done.stdout + done.stderr), done.stdout[-2000:]


def test_the_matrix_is_large_enough():
    assert len(CASES) >= 50 and len({_id(c) for c in CASES}) == len(CASES)


def test_map_and_rec_routes_keep_the_same_images(base, tmp_path):
    """imagenet-8 with one image of each broken kind: the map writer, the .rec packed from its
    map (the imagenet8_rec rule) and a .rec packed straight from the folders keep the same images."""
    root = copy(base, tmp_path, "in8/x")
    broken = [sorted(root.glob("train/*/*.JPEG"))[i * 50] for i in range(len(BAD_JPEGS))]
    for path, kind in zip(broken, BAD_JPEGS):
        break_image(path, kind)

    def run(name, *args):
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                              env=cli_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]

    def rec_paths(lst, rec):
        path = {e.index: e.path for e in read_lst(lst)}
        return {path[key] for key in RecordReader(rec).keys}

    run("write_cntk_maps.py", "--raw", root, "--out", tmp_path / "maps", "--image-root", root)
    map_route = {str(Path(p).relative_to(root)) for p, _ in read_cntk_map(tmp_path / "maps/train_map.txt")}
    run("make_lst.py", tmp_path / "from_map", "--from-map", tmp_path / "maps/train_map.txt")
    run("make_rec.py", tmp_path / "from_map.lst", "/", "--pass-through", "--rec", tmp_path / "from_map.rec")
    rec_route = {str(Path(p).relative_to(root)) for p in rec_paths(tmp_path / "from_map.lst", tmp_path / "from_map.rec")}
    run("make_lst.py", tmp_path / "folders", root, "--recursive", "--no-shuffle")
    run("make_rec.py", tmp_path / "folders.lst", root, "--pass-through", "--rec", tmp_path / "folders.rec")
    direct = {p for p in rec_paths(tmp_path / "folders.lst", tmp_path / "folders.rec") if p.startswith("train/")}
    expected = {str(p.relative_to(root)) for p in root.glob("train/*/*.JPEG")} - {
        str(p.relative_to(root)) for p in broken}
    assert len(expected) == 320 - 3
    assert map_route == rec_route == direct == expected


def test_extract_listing_failure_leaves_no_folder(tmp_path):
    """The listing is written before the extracted folder is moved into place."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts/extract_archive.py"), "--archive",
                           str(tar_with(tmp_path / "a.tar", "top/a\nb")), "--out", str(tmp_path / "out"),
                           "--listing", str(tmp_path / "sums.txt")], env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 1 and "newline" in done.stderr, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar"]


@pytest.mark.slow  # a few seconds
@pytest.mark.parametrize("count, message", [(2_700_000, "over 100x the compressed size"), (10_000, "file has more")])
def test_gzip_bomb_is_refused_with_bounded_memory(base, tmp_path, count, message):
    """A 2 MiB MNIST gzip that inflates to 2 GiB, its header claiming all of it or a plausible
    size: refused while streaming, the process's peak memory far under the cap (100x the
    compressed size), let alone the 2 GiB (the whole file was inflated before: 4 GiB peak)."""
    raw = copy(base, tmp_path, "mnist")
    bomb = gzip_bomb(raw / "t10k-images-idx3-ubyte.gz", count)
    cap_mib = 100 * bomb.stat().st_size / 2**20
    measure = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.stderr.write(done.stderr)")
    done = subprocess.run([sys.executable, "-c", measure, sys.executable, str(ROOT / "scripts/mnist_to_pngs.py"),
                           "--raw", str(raw), "--split", "test", "--out-dir", str(tmp_path / "png"),
                           "--lst", str(tmp_path / "test.lst")], env=cli_env(), capture_output=True, text=True,
                          timeout=600)
    returncode, peak_kib = map(int, done.stdout.split())
    assert returncode == 1 and message in done.stderr, done.stderr[-2000:]
    assert peak_kib / 1024 < min(cap_mib, 250), (peak_kib / 1024, cap_mib)
