"""Layout readers on the demo archives; wrong layouts give errors that name the file."""
import contextlib
import os
import re
import shutil
import tarfile
import zipfile

import numpy as np
import pytest
import scipy.io
from conftest import with_peak_memory
from PIL import Image

from imgdag.codec import decode_rgb
from imgdag.demo.dog_breed import DOG_BREEDS, make_demo_dog_breed
from imgdag.demo.ilsvrc import make_demo_ilsvrc_val
from imgdag.demo.imagenet import IMAGENET8_WNIDS, make_demo_imagenet8
from imgdag.demo.tiny_imagenet import TINY_WNIDS, make_demo_tiny_imagenet
from imgdag.errors import DataError
from imgdag.extract import extract_archive
from imgdag.layouts.dog_breed import read_dog_breed
from imgdag.layouts.ilsvrc_val import (Synset, leaf_synsets, meta_mat_bytes, parse_meta_mat, read_devkit,
                                       val_table_from_caffe, val_table_from_devkit)
from imgdag.formats.cntk_map_writer import write_cntk_map
from imgdag.imagecheck import ImageCheck
from imgdag.layouts.imagenet_folders import ImagenetFolders, read_imagenet_folders
from imgdag.layouts.tiny_imagenet import read_tiny_imagenet
from imgdag.layouts.tree import DirTree, FolderTree, folder_state, open_tree


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    make_demo_imagenet8(root / "imagenet8")
    make_demo_tiny_imagenet(root / "tiny")
    make_demo_dog_breed(root / "dog")
    make_demo_ilsvrc_val(root / "ilsvrc")
    extract_archive(root / "imagenet8/imagenet-8.tar", root / "imagenet8/extracted")
    extract_archive(root / "tiny/tiny-imagenet-200.zip", root / "tiny/extracted")
    return root


# --- ImageNet class folders ---------------------------------------------------------------

def test_imagenet_folders_tar_and_dir_agree(demos):
    from_tar = read_imagenet_folders(demos / "imagenet8/imagenet-8.tar")
    from_dir = read_imagenet_folders(demos / "imagenet8/extracted")
    assert from_tar.classes == from_dir.classes == IMAGENET8_WNIDS == sorted(IMAGENET8_WNIDS)
    for split, count in (("train", 320), ("validation", 80)):
        assert from_tar.records(split) == from_dir.records(split)
        assert len(from_tar.records(split)) == count
    for record in from_dir.records("validation"):
        assert record.path.split("/")[1] == record.wnid == IMAGENET8_WNIDS[record.label]
        assert (demos / "imagenet8/extracted" / record.path).is_file()
    assert from_tar.skipped == {}


def test_imagenet_folders_given_classes_and_unknown(demos, tmp_path):
    root = tmp_path / "raw"
    shutil.copytree(demos / "imagenet8/extracted", root)
    shutil.copytree(root / "validation/n01514668", root / "validation/n09999999")
    (root / "train/n01440764/notes.txt").write_text("hi")
    reading = read_imagenet_folders(root, classes=IMAGENET8_WNIDS[:4])
    assert reading.classes == IMAGENET8_WNIDS[:4]
    assert {r.label for r in reading.records("train")} == {0, 1, 2, 3}
    assert reading.skipped["train: files not in an accepted image format (.jpeg .jpg .png)"] == 1
    unknown = [k for k in reading.skipped if k.startswith("validation: images of 5 classes")]
    assert unknown and "n09999999" in unknown[0] and reading.skipped[unknown[0]] == 50


def test_a_file_directly_in_train_is_no_class(demos, tmp_path):
    """Stray files directly in train/ (a folder, and the same as a tar) are skipped and
    counted, never a class."""
    root = tmp_path / "raw"
    shutil.copytree(demos / "imagenet8/extracted", root)
    (root / "train/README.txt").write_text("hi")
    (root / "train/n09999999.JPEG").write_bytes(min((root / "validation/n01440764").iterdir()).read_bytes())
    with tarfile.open(tmp_path / "raw.tar", "w") as tf:
        tf.add(root, "raw")
    for raw in (root, tmp_path / "raw.tar"):
        reading = read_imagenet_folders(raw)
        assert reading.classes == IMAGENET8_WNIDS, raw
        assert reading.skipped == {"train: files not directly inside a class folder": 2}, raw
        assert len(reading.records("train")) == 320


@pytest.mark.parametrize("empty", ["no files", "only a non-image"])
def test_imagenet_folder_without_images_never_shifts_labels(demos, tmp_path, empty):
    root = tmp_path / "raw"
    shutil.copytree(demos / "imagenet8/extracted", root)
    shutil.rmtree(root / "train/n01443537")
    (root / "train/n01443537").mkdir()
    if empty == "only a non-image":
        (root / "train/n01443537/notes.txt").write_text("hi")
    with pytest.raises(DataError, match=r"train.*1 classes of the class list have no usable train image \(n01443537\)"):
        read_imagenet_folders(root)
    kept = read_imagenet_folders(root, empty_classes="keep")
    assert kept.classes == IMAGENET8_WNIDS
    assert {r.wnid: r.label for r in kept.records("train")} == {w: i for i, w in enumerate(IMAGENET8_WNIDS)
                                                                if w != "n01443537"}
    assert kept.skipped["train: classes without a usable image, label index kept (n01443537)"] == 1


def test_imagenet_folders_wrong_layout_names_what_is_missing(demos, tmp_path):
    with pytest.raises(DataError, match="no train found.*train/<wnid>"):
        read_imagenet_folders(tmp_path)
    shutil.copytree(demos / "imagenet8/extracted/train", tmp_path / "only/train")
    with pytest.raises(DataError) as e:
        read_imagenet_folders(tmp_path / "only")
    assert str(tmp_path / "only" / "validation") in str(e.value)


def odd_imagenet_tree(root, jpeg: bytes):
    """Class folders whose names sort differently with and without the '/' after them, nested
    and stray files, a non-image, a FIFO, a validation class that train lacks, an empty class."""
    for split in ("train", "validation"):
        for wnid in ("n01", "n01-x", "n01.b", "n02"):
            for name in ("a.JPEG", "a-b.JPEG", "b.jpg", "notes.txt", "deep/c.JPEG"):
                (root / split / wnid / name).parent.mkdir(parents=True, exist_ok=True)
                (root / split / wnid / name).write_bytes(jpeg)
        (root / split / "stray.JPEG").write_bytes(jpeg)
        os.mkfifo(root / split / "n02" / "pipe.JPEG")
    (root / "validation/n09").mkdir()
    (root / "validation/n09/x.JPEG").write_bytes(jpeg)
    (root / "train/n03").mkdir()


def test_imagenet_folders_read_a_class_at_a_time_as_the_whole_listing_reads_them(demos, tmp_path):
    """A folder is read a class folder at a time (FolderTree), a tar from its whole listing: the
    same classes (an empty folder is one: a tar's folder entry), records in the same order, the
    same skips, the same check results."""
    jpeg = min((demos / "imagenet8/extracted/validation/n01440764").iterdir()).read_bytes()
    root = tmp_path / "top" / "raw"
    odd_imagenet_tree(root, jpeg)
    (root / "train/n02/bad.JPEG").write_bytes(jpeg[:200])
    with tarfile.open(tmp_path / "raw.tar", "w") as tf:
        tf.add(root, "raw")  # the FIFOs too, as FIFO members
    readings = []
    keep = {"empty_classes": "keep"}
    for kwargs in (keep, {"subset": 1, **keep}, {"check": ImageCheck("skip", workers=2), **keep},
                   {"classes": ["n02", "n01"], "check": ImageCheck("skip")}):
        with pytest.warns() if "check" in kwargs else contextlib.nullcontext():
            from_dir = read_imagenet_folders(tmp_path / "top", **kwargs)
        with pytest.warns() if "check" in kwargs else contextlib.nullcontext():
            from_tar = read_imagenet_folders(tmp_path / "raw.tar", **kwargs)
        assert isinstance(from_dir.splits["train"].tree, FolderTree)
        for split in ("train", "validation"):
            assert from_dir.records(split) == from_tar.records(split), (kwargs, split)
        assert from_dir.classes == from_tar.classes
        assert from_dir.skipped == from_tar.skipped, kwargs
        readings.append(from_dir)
    assert [r.path for r in readings[0].records("train")] == [  # '-' < '.' < '/'
        f"raw/train/{wnid}/{name}" for wnid in ("n01-x", "n01.b", "n01", "n02")
        for name in ("a-b.JPEG", "a.JPEG", "b.jpg", *(("bad.JPEG",) if wnid == "n02" else ()))]
    assert [r.path for r in readings[1].records("validation")] == [
        f"raw/validation/{wnid}/a-b.JPEG" for wnid in ("n01-x", "n01.b", "n01", "n02")]  # n09: not a class
    assert readings[0].classes == ["n01", "n01-x", "n01.b", "n02", "n03"]
    assert readings[0].skipped["train: classes without a usable image, label index kept (n03)"] == 1
    with pytest.raises(DataError, match=r"1 classes of the class list have no usable train image \(n03\)"):
        read_imagenet_folders(tmp_path / "raw.tar")
    assert readings[3].classes == ["n02", "n01"]
    assert readings[3].skipped == {
        "train: files not directly inside a class folder": 5, "validation: files not directly inside a class folder": 5,
        "train: files not in an accepted image format (.jpeg .jpg .png)": 4,
        "validation: files not in an accepted image format (.jpeg .jpg .png)": 4,
        "train: images of 2 classes not in the class list (n01-x, n01.b)": 6,
        "validation: images of 3 classes not in the class list (n01-x, n01.b, n09)": 7,
        "train: special files (FIFO, socket, device, broken or looping link)": 1,
        "validation: special files (FIFO, socket, device, broken or looping link)": 1,
        "train: images that do not decode": 1}


def test_a_class_at_a_time_holds_one_class_not_the_split(tmp_path):
    """Writing a CNTK map from class folders holds one class folder's names at a time: peak
    Python memory grows by under 40 bytes an image from 2,000 to 8,000 images (50 a class;
    the whole listing, as a DirTree holds it, took 175 an image)."""

    def peak(classes: int) -> int:
        root = tmp_path / str(classes)
        for c in range(classes):
            for split, n in (("train", 50), ("validation", 1)):
                (root / split / f"n{c:08d}").mkdir(parents=True)
                for i in range(n):
                    (root / split / f"n{c:08d}" / f"n{c:08d}_{i:05d}.JPEG").touch()
        lines, peak = with_peak_memory(lambda: write_cntk_map(tmp_path / "map.txt",
                                                              ImagenetFolders(root).records("train")))
        assert lines == classes * 50
        return peak

    peak(2)  # first-call allocations out of the way
    small, large = peak(40), peak(160)
    assert (large - small) / 6000 < 40, f"peak {small} -> {large} bytes"


def test_a_folder_tree_reads_only_regular_files_inside_it(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a/x.JPEG").write_bytes(b"x")
    os.mkfifo(tmp_path / "a/pipe.JPEG")
    tree = FolderTree(tmp_path)
    assert tree.read_bytes("a/x.JPEG") == b"x"
    for name, problem in (("a/../a/x.JPEG", "not a file name inside"), ("/etc/passwd", "not a file name inside"),
                          ("a//x.JPEG", "not a file name inside"), ("a/pipe.JPEG", "not a regular file"),
                          ("a", "not a regular file"), ("a/none.JPEG", "unreadable")):
        with pytest.raises(DataError, match=problem):
            tree.read_bytes(name)


# --- Tiny ImageNet ---------------------------------------------------------------------------

def test_tiny_imagenet_demo(demos):
    reading = read_tiny_imagenet(demos / "tiny/tiny-imagenet-200.zip")
    assert reading.classes == sorted(TINY_WNIDS) != TINY_WNIDS
    assert [len(reading.records(s)) for s in ("train", "val", "test")] == [300, 50, 20]
    assert reading.skipped == {}
    for record in reading.records("train") + reading.records("val"):
        assert reading.classes[record.label] == record.wnid
        x0, y0, x1, y1 = record.extras["box"]
        assert 0 <= x0 < x1 <= 63 and 0 <= y0 < y1 <= 63
    assert all(r.label == -1 for r in reading.records("test"))
    extracted = read_tiny_imagenet(demos / "tiny/extracted")
    assert extracted.records("val") == reading.records("val")


def test_tiny_grayscale_loads_as_rgb(demos):
    reading = read_tiny_imagenet(demos / "tiny/extracted")
    gray = [r for r in reading.records("train")
            if Image.open(demos / "tiny/extracted" / r.path).mode == "L"]
    assert gray, "the demo should hold some grayscale images"
    pixels = decode_rgb(reading.read_bytes("train", gray[0]), gray[0].path)
    assert pixels.shape == (64, 64, 3) and (pixels[..., 0] == pixels[..., 2]).all()


def test_tiny_counts_missing_val_images_and_unknown_wnids(demos, tmp_path):
    root = tmp_path / "tiny"
    shutil.copytree(demos / "tiny/extracted/tiny-imagenet-200", root)
    (root / "val/images/val_0.JPEG").unlink()
    with open(root / "val/val_annotations.txt", "a") as f:
        f.write("val_999.JPEG\tn07749582\t1\t2\t30\t40\n")
        f.write("val_998.JPEG\tn00000001\t1\t2\t30\t40\n")
    shutil.copytree(root / "train/n07749582", root / "train/n00000001")
    reading = read_tiny_imagenet(root)
    assert reading.skipped["train: images in class folders not in wnids.txt"] == 30
    assert reading.skipped["val: annotations naming a missing image"] == 2  # val_0 and val_999
    assert reading.skipped["val: annotations with a WNID not in wnids.txt"] == 1
    assert len(reading.records("val")) == 49


@pytest.mark.parametrize("remove, named", [("wnids.txt", "wnids.txt"), ("words.txt", "words.txt"),
                                           ("val/val_annotations.txt", "val_annotations.txt"),
                                           ("test", "test/images")])
def test_tiny_wrong_layout_names_the_file(demos, tmp_path, remove, named):
    root = tmp_path / "tiny"
    shutil.copytree(demos / "tiny/extracted/tiny-imagenet-200", root)
    target = root / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(DataError, match=named.replace(".", r"\.")):
        read_tiny_imagenet(root)


def test_tiny_wnid_without_train_images_is_an_error(demos, tmp_path):
    root = tmp_path / "tiny"
    shutil.copytree(demos / "tiny/extracted", root)
    wnid = (root / "tiny-imagenet-200/wnids.txt").read_text().split()[3]
    shutil.rmtree(root / f"tiny-imagenet-200/train/{wnid}")
    with pytest.raises(DataError, match=f"1 classes .* no usable train image \\({wnid}\\)"):
        read_tiny_imagenet(root)
    kept = read_tiny_imagenet(root, empty_classes="keep")
    assert wnid in kept.classes and kept.classes.index(wnid) not in {r.label for r in kept.records("train")}


def test_tiny_bad_box_line_names_file_and_line(demos, tmp_path):
    root = tmp_path / "tiny"
    shutil.copytree(demos / "tiny/extracted/tiny-imagenet-200", root)
    boxes = root / "train/n07749582/n07749582_boxes.txt"
    lines = boxes.read_text().splitlines()
    lines[2] = "n07749582_2.JPEG\t1\t2\tthree\t4"
    boxes.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"n07749582_boxes\.txt: line 3"):
        read_tiny_imagenet(root)


# --- Dog breed -------------------------------------------------------------------------------

def test_dog_breed_demo(demos):
    reading = read_dog_breed(demos / "dog")
    assert reading.classes == DOG_BREEDS
    labels = dict(line.split(",") for line in (demos / "dog/labels.csv").read_text().splitlines()[1:])
    assert len(reading.records("train")) == len(labels)
    for record in reading.records("train"):
        assert labels[record.extras["id"]] == record.wnid == DOG_BREEDS[record.label]
        assert record.path == f"train/{record.extras['id']}.jpg"
    assert len(reading.records("test")) == 20 and reading.skipped == {}


def test_dog_breed_counts_rows_without_image_and_images_without_row(demos, tmp_path):
    raw = tmp_path / "dog"
    shutil.copytree(demos / "dog", raw)
    with zipfile.ZipFile(raw / "train.zip") as zf:
        zf.extractall(raw)
    (raw / "train.zip").unlink()
    images = sorted((raw / "train").iterdir())
    images[0].unlink()
    images[1].unlink()
    shutil.copy(images[2], raw / "train/ffffffffffffffffffffffffffffffff.jpg")
    with zipfile.ZipFile(raw / "labels.csv.zip", "w") as zf:  # the zipped labels variant
        zf.write(raw / "labels.csv", "labels.csv")
    (raw / "labels.csv").unlink()
    reading = read_dog_breed(raw)
    assert reading.skipped["labels.csv: rows without a train image"] == 2
    assert reading.skipped["train: images without a labels.csv row"] == 1
    assert len(reading.records("train")) == len(images) - 2


@pytest.mark.parametrize("remove", ["labels.csv", "sample_submission.csv", "train.zip", "test.zip"])
def test_dog_breed_wrong_layout_names_the_file(demos, tmp_path, remove):
    raw = tmp_path / "dog"
    shutil.copytree(demos / "dog", raw)
    (raw / remove).unlink()
    with pytest.raises(DataError, match=remove.split(".")[0]):
        read_dog_breed(raw)


def test_dog_breed_without_train_images_is_an_error(demos, tmp_path):
    raw = tmp_path / "dog"
    shutil.copytree(demos / "dog", raw)
    lines = (raw / "labels.csv").read_text().splitlines()
    gone = lines[1].split(",")[1]
    kept = [line for line in lines if not line.endswith("," + gone)]
    (raw / "labels.csv").write_text("\n".join(kept) + "\n")
    with pytest.raises(DataError, match=f"no usable train image \\({gone}\\)"):
        read_dog_breed(raw)


def test_dog_breed_unknown_breed_counted(demos, tmp_path):
    raw = tmp_path / "dog"
    shutil.copytree(demos / "dog", raw)
    lines = (raw / "labels.csv").read_text().splitlines()
    lines[1] = lines[1].split(",")[0] + ",not_a_breed"
    (raw / "labels.csv").write_text("\n".join(lines) + "\n")
    assert read_dog_breed(raw).skipped == {"train: images of a breed not in sample_submission.csv": 1}


# --- ILSVRC2012 validation ---------------------------------------------------------------------

def test_ilsvrc_demo_devkit_structure(demos):
    synsets, truth = read_devkit(demos / "ilsvrc/ILSVRC2012_devkit_t12.tar.gz")
    leaves = leaf_synsets(synsets)
    assert len(leaves) == 1000 and len(synsets) > 1000
    assert sorted(s.ilsvrc2012_id for s in leaves) == list(range(1, 1001))
    by_id = [s.wnid for s in sorted(leaves, key=lambda s: s.ilsvrc2012_id)]
    assert by_id != sorted(by_id), "IDs must not follow sorted WNID order"
    assert set(IMAGENET8_WNIDS) <= {s.wnid for s in leaves}
    assert all(s.wnid.startswith("n9") for s in leaves if s.wnid not in IMAGENET8_WNIDS)
    parents = [s for s in synsets if s.num_children]
    assert parents and all(len(p.children) == p.num_children for p in parents)
    assert len(truth) == 96


def test_meta_mat_reads_like_torchvision(demos, tmp_path):
    """torchvision's parse_devkit_archive reads meta.mat by field position with squeeze_me=True."""
    synsets, _ = read_devkit(demos / "ilsvrc/ILSVRC2012_devkit_t12.tar.gz")
    (tmp_path / "meta.mat").write_bytes(meta_mat_bytes(synsets))
    meta = scipy.io.loadmat(tmp_path / "meta.mat", squeeze_me=True)["synsets"]
    nums_children = list(zip(*meta))[4]
    meta = [meta[i] for i, n in enumerate(nums_children) if n == 0]
    idcs, wnids = list(zip(*meta))[:2]
    assert dict(zip(wnids, (int(i) for i in idcs))) == {s.wnid: s.ilsvrc2012_id for s in leaf_synsets(synsets)}
    assert parse_meta_mat(str(tmp_path / "meta.mat"), "meta.mat") == synsets


def test_meta_mat_round_trip_and_bad_file(tmp_path):
    synsets = [Synset(1, "n00000002", "b", "gloss b", 0, (), 0, 10),
               Synset(2, "n00000001", "a", "gloss a", 0, (), 0, 12),
               Synset(3, "n00000003", "ab", "both", 2, (1, 2), 1, 22),
               Synset(4, "n00000004", "one", "one child", 1, (3,), 2, 22)]
    (tmp_path / "meta.mat").write_bytes(meta_mat_bytes(synsets))
    assert parse_meta_mat((tmp_path / "meta.mat").read_bytes(), "meta.mat") == synsets
    scipy.io.savemat(tmp_path / "other.mat", {"x": np.zeros(3)})
    with pytest.raises(DataError, match="synsets"):
        parse_meta_mat(str(tmp_path / "other.mat"), tmp_path / "other.mat")


def test_ilsvrc_devkit_and_caffe_give_the_same_table(demos):
    d = demos / "ilsvrc"
    devkit, images = d / "ILSVRC2012_devkit_t12.tar.gz", d / "ILSVRC2012_img_val.tar"
    caffe = (d / "caffe_ilsvrc12/val.txt", d / "caffe_ilsvrc12/synset_words.txt")
    for classes in (None, IMAGENET8_WNIDS):
        a = val_table_from_devkit(devkit, classes, images)
        b = val_table_from_caffe(*caffe, classes, images, devkit)
        assert a.classes == b.classes and a.records("val") == b.records("val") and a.skipped == b.skipped
        c = val_table_from_caffe(*caffe, classes)
        plain = lambda table: [(r.path, r.label, r.wnid) for r in table.records("val")]
        assert plain(c) == plain(a)
        assert all(r.extras["ilsvrc2012_id"] is None for r in c.records("val"))
    eight = val_table_from_devkit(devkit, IMAGENET8_WNIDS)
    assert len(eight.records("val")) == 80
    assert eight.skipped == {"val: images of classes not in the class list (excluded)": 16}


def test_ilsvrc_ground_truth_naming_a_non_leaf_is_an_error(demos, tmp_path):
    kit = tmp_path / "kit"
    extract_archive(demos / "ilsvrc/ILSVRC2012_devkit_t12.tar.gz", kit)
    truth = kit / "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"
    truth.write_text(truth.read_text() + "1005\n")
    with pytest.raises(DataError, match="line 97: ILSVRC2012_ID 1005 is not a leaf"):
        val_table_from_devkit(kit)
    truth.unlink()
    with pytest.raises(DataError, match="ILSVRC2012_validation_ground_truth.txt"):
        val_table_from_devkit(kit)


def test_caffe_label_out_of_range(demos, tmp_path):
    val = tmp_path / "val.txt"
    val.write_text("ILSVRC2012_val_00000001.JPEG 1000\n")
    with pytest.raises(DataError, match="label 1000"):
        val_table_from_caffe(val, demos / "ilsvrc/caffe_ilsvrc12/synset_words.txt")


# --- FileTree ---------------------------------------------------------------------------------

@pytest.mark.parametrize("archive", ["tiny/tiny-imagenet-200.zip", "imagenet8/imagenet-8.tar"])
def test_a_reopened_archive_reads_on_its_own_handle_from_the_same_listing(demos, archive):
    """What a worker forked from the process that listed an archive reads it with."""
    with open_tree(demos / archive) as tree:
        images = [n for n in tree.names() if n.endswith(".JPEG")]
        expected = {n: tree.read_bytes(n) for n in (images[-1], images[0])}
        again = tree.reopened()
    try:  # the first tree is closed now
        assert again.names() == tree.names() and again.special == tree.special
        assert {n: again.read_bytes(n) for n in expected} == expected  # backwards in the archive too
    finally:
        again.close()


def test_a_folder_tree_reads_only_the_files_its_listing_holds(tmp_path):
    """As an archive's tree: a name from a hand-edited list cannot read outside the folder, nor
    open a FIFO (which would block)."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root/a.txt").write_text("a")
    (tmp_path / "outside.txt").write_text("o")
    os.mkfifo(tmp_path / "root/fifo")
    tree = DirTree(tmp_path / "root")
    assert tree.read_bytes("a.txt") == b"a" and tree.special == ["fifo"]
    for name in ("../outside.txt", "missing.txt", "fifo"):
        with pytest.raises(DataError, match=f"root/{re.escape(name)}: not a file of the folder's listing"):
            tree.read_bytes(name)


def test_tree_find_root_and_names(demos):
    with open_tree(demos / "tiny/tiny-imagenet-200.zip") as tree:
        assert tree.find_root("wnids.txt", "x") == "tiny-imagenet-200/"
        assert len(tree.names("tiny-imagenet-200/test/images")) == 20
        assert tree.where("a") == f"{demos / 'tiny/tiny-imagenet-200.zip'}:a"
        with pytest.raises(DataError, match="no labels.csv found"):
            tree.find_root("labels.csv", "x")


def replace_keeping_size_and_time(path, data: bytes):
    """`path` replaced by a new file (a new inode) of the same size and time: what DVC rehashes."""
    st = path.stat()
    new = path.with_name("new-" + path.name)
    new.write_bytes(data)
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert len(data) == st.st_size
    new.rename(path)


def test_folder_state_changes_with_any_file_or_folder_inside_and_not_with_the_root_time(tmp_path):
    raw = tmp_path / "raw"
    (raw / "train/n01").mkdir(parents=True)
    image = raw / "train/n01/a.jpg"
    image.write_bytes(b"1234")
    os.utime(image, ns=(10**18, 10**18))
    before = folder_state(raw)
    assert before.startswith("1 files, ") and folder_state(raw) == before
    os.utime(raw, ns=(2 * 10**18, 2 * 10**18))  # the root's own time: no image changed
    assert folder_state(raw) == before
    changes = {
        "rewritten, same size": lambda: (image.write_bytes(b"5678"), os.utime(image, ns=(10**18, 10**18 + 1))),
        "replaced, same size and time": lambda: replace_keeping_size_and_time(image, b"abcd"),
        "added": lambda: (raw / "train/n01/b.jpg").write_bytes(b"x"),
        "renamed": lambda: (raw / "train/n01/b.jpg").rename(raw / "train/n01/c.jpg"),
        "empty class folder": lambda: (raw / "train/n02").mkdir(),
        "removed": lambda: (raw / "train/n01/c.jpg").unlink(),
    }
    seen = {before}
    for what, change in changes.items():
        change()
        state = folder_state(raw)
        assert state not in seen, what
        seen.add(state)
    assert folder_state(tmp_path / "raw.tar") == "" and folder_state(tmp_path / "absent") == ""
