"""Format writers and readers: CNTK maps, dog-breed class folders, CSV index tables, class lists."""
import math
import os

import pytest

from imgdag.demo.dog_breed import make_demo_dog_breed
from imgdag.demo.imagenet import IMAGENET8_WNIDS, make_demo_imagenet8
from imgdag.errors import DataError
from imgdag.extract import extract_archive
from imgdag.formats.class_folders import split_train_valid, valid_per_class, write_class_folders
from imgdag.formats.class_list import read_class_list, write_class_list
from imgdag.formats.cntk_map import read_cntk_map
from imgdag.formats.cntk_map_writer import write_cntk_map
from imgdag.formats.index_table import (read_ilsvrc_val_table, read_tiny_index, write_ilsvrc_val_table,
                                        write_tiny_index)
from imgdag.layouts.dog_breed import read_dog_breed
from imgdag.layouts.imagenet_folders import read_imagenet_folders
from imgdag.layouts.records import ImageRecord


@pytest.fixture(scope="module")
def imagenet8(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet8")
    make_demo_imagenet8(root, train_per_class=4, val_per_class=2)
    extract_archive(root / "imagenet-8.tar", root / "raw")
    return root / "raw"


@pytest.fixture(scope="module")
def dog(tmp_path_factory):
    root = tmp_path_factory.mktemp("dog")
    make_demo_dog_breed(root)
    return root


# --- CNTK map files ----------------------------------------------------------------------------

def test_cntk_map_relative_round_trip(imagenet8, tmp_path):
    reading = read_imagenet_folders(imagenet8)
    assert write_cntk_map(tmp_path / "train_map.txt", reading.records("train")) == 32
    rows = read_cntk_map(tmp_path / "train_map.txt")
    assert rows == [(r.path, r.label) for r in reading.records("train")]
    assert {label for _, label in rows} == set(range(8))
    for path, label in rows:
        assert path.startswith(f"train/{IMAGENET8_WNIDS[label]}/") and (imagenet8 / path).is_file()
    first = (tmp_path / "train_map.txt").read_text().splitlines()[0]
    assert first == f"{rows[0][0]}\t{rows[0][1]}"


def test_cntk_map_absolute_paths(imagenet8, tmp_path):
    reading = read_imagenet_folders(imagenet8)
    write_cntk_map(tmp_path / "val_map.txt", reading.records("validation"), image_root=imagenet8)
    rows = read_cntk_map(tmp_path / "val_map.txt")
    assert len(rows) == 16
    assert all(os.path.isabs(p) and os.path.isfile(p) for p, _ in rows)


def test_cntk_map_bad_input(tmp_path):
    (tmp_path / "m.txt").write_text("a.jpg\t0\nb.jpg 1\n")
    with pytest.raises(DataError, match=r"m\.txt: line 2"):
        read_cntk_map(tmp_path / "m.txt")
    with pytest.raises(DataError, match="tab or newline"):
        write_cntk_map(tmp_path / "n.txt", [ImageRecord("a\tb.jpg", 0, "x")])
    assert not (tmp_path / "n.txt").exists()


# --- dog-breed class folders -------------------------------------------------------------------

def test_valid_per_class_formula():
    records = [ImageRecord(f"{c}{i}", c, str(c)) for c, n in enumerate((10, 14, 25)) for i in range(n)]
    assert valid_per_class(records, 0.1) == 1
    assert valid_per_class(records, 0.25) == 2
    assert valid_per_class(records, 0.05) == 1  # never below one
    with pytest.raises(ValueError):
        valid_per_class(records, 1.5)


def test_class_folders_follow_valid_ratio(dog, tmp_path):
    reading = read_dog_breed(dog)
    train_counts = {}
    for r in reading.records("train"):
        train_counts[r.wnid] = train_counts.get(r.wnid, 0) + 1
    ratio = 0.3
    n_valid = max(1, math.floor(min(train_counts.values()) * ratio))
    counts = write_class_folders(reading, tmp_path / "folders", valid_ratio=ratio, seed=3)
    out = tmp_path / "folders"
    assert counts.valid_per_class == n_valid == 3
    for breed, total in train_counts.items():
        assert len(list((out / "valid" / breed).iterdir())) == n_valid
        assert len(list((out / "train" / breed).iterdir())) == total - n_valid
        assert len(list((out / "train_valid" / breed).iterdir())) == total
        valid = {p.name for p in (out / "valid" / breed).iterdir()}
        assert valid.isdisjoint(p.name for p in (out / "train" / breed).iterdir())
    assert len(list((out / "test/unknown").iterdir())) == 20
    assert counts.images == {"train": sum(train_counts.values()) - 6 * n_valid, "valid": 6 * n_valid,
                             "train_valid": sum(train_counts.values()), "test": 20}
    assert read_class_list(out / "classes.txt") == reading.classes
    assert counts.copied == sum(counts.images.values())  # images came from zips: written, not linked
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp sibling left


def test_class_folders_deterministic_by_seed(dog):
    records = read_dog_breed(dog).records("train")
    pick = lambda seed: {r.path for r in split_train_valid(records, 0.3, seed)[1]}
    assert pick(0) == pick(0)
    assert pick(0) != pick(1)
    shuffled = list(reversed(records))
    assert {r.path for r in split_train_valid(shuffled, 0.3, 0)[1]} == pick(0)


def test_class_folders_hardlink_from_a_folder(dog, tmp_path):
    import zipfile
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("labels.csv", "sample_submission.csv"):
        (raw / name).write_bytes((dog / name).read_bytes())
    for name in ("train.zip", "test.zip"):
        with zipfile.ZipFile(dog / name) as zf:
            zf.extractall(raw)
    reading = read_dog_breed(raw)
    counts = write_class_folders(reading, tmp_path / "out", 0.1)
    assert counts.linked == sum(counts.images.values()) and counts.copied == 0
    some = reading.records("train")[0]
    target = next((tmp_path / "out/train_valid").rglob(some.path.split("/")[-1]))
    assert os.path.samefile(target, raw / some.path)
    write_class_folders(reading, tmp_path / "out", 0.5)  # rebuilt in place, atomically
    assert sum(1 for _ in (tmp_path / "out/valid").rglob("*.jpg")) == 6 * 5


# --- CSV index tables --------------------------------------------------------------------------

def test_tiny_index_round_trip(tmp_path):
    records = [ImageRecord("tiny-imagenet-200/train/n1/images/n1_0.JPEG", 0, "n1", {"box": (1, 2, 30, 40)}),
               ImageRecord("val/images/val_0.JPEG", 3, "n4", {"box": (0, 0, 63, 63)}),
               ImageRecord("test/images/test,0.JPEG", -1, "", {})]
    assert write_tiny_index(tmp_path / "t.csv", records) == 3
    assert read_tiny_index(tmp_path / "t.csv") == records
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "file,label,wnid,x0,y0,x1,y1"
    assert lines[1] == "tiny-imagenet-200/train/n1/images/n1_0.JPEG,0,n1,1,2,30,40"
    assert lines[3] == '"test/images/test,0.JPEG",-1,,,,,'


def test_ilsvrc_table_round_trip(tmp_path):
    records = [ImageRecord("ILSVRC2012_val_00000001.JPEG", 65, "n01751748", {"ilsvrc2012_id": 490}),
               ImageRecord("ILSVRC2012_val_00000002.JPEG", 970, "n09193705", {"ilsvrc2012_id": None})]
    assert write_ilsvrc_val_table(tmp_path / "v.csv", records) == 2
    assert read_ilsvrc_val_table(tmp_path / "v.csv") == records
    assert (tmp_path / "v.csv").read_text().splitlines() == [
        "file,ilsvrc2012_id,wnid,label", "ILSVRC2012_val_00000001.JPEG,490,n01751748,65",
        "ILSVRC2012_val_00000002.JPEG,,n09193705,970"]


def test_index_tables_reject_wrong_header_and_bad_numbers(tmp_path):
    (tmp_path / "v.csv").write_text("file,label\nx,1\n")
    with pytest.raises(DataError, match="expected file,ilsvrc2012_id,wnid,label"):
        read_ilsvrc_val_table(tmp_path / "v.csv")
    (tmp_path / "t.csv").write_text("file,label,wnid,x0,y0,x1,y1\na.JPEG,zero,n1,,,,\n")
    with pytest.raises(DataError, match=r"t\.csv: line 2: label 'zero'"):
        read_tiny_index(tmp_path / "t.csv")


def test_class_list_round_trip_and_synset_words(tmp_path):
    write_class_list(tmp_path / "classes.txt", IMAGENET8_WNIDS)
    assert read_class_list(tmp_path / "classes.txt") == IMAGENET8_WNIDS
    (tmp_path / "synset_words.txt").write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish\n")
    assert read_class_list(tmp_path / "synset_words.txt") == IMAGENET8_WNIDS[:2]
    (tmp_path / "dup.txt").write_text("a\nb\na\n")
    with pytest.raises(DataError, match="twice"):
        read_class_list(tmp_path / "dup.txt")


def test_a_blank_line_inside_a_class_list_is_an_error_naming_it(tmp_path):
    """`n01\\n\\nn02` once gave n02 label 1; blank lines at the end are harmless."""
    (tmp_path / "ok.txt").write_text("n01\nn02\n\n")
    assert read_class_list(tmp_path / "ok.txt") == ["n01", "n02"]
    (tmp_path / "gap.txt").write_text("n01\n\nn02\n")
    with pytest.raises(DataError, match=r"gap.txt.*line 2 is blank"):
        read_class_list(tmp_path / "gap.txt")
