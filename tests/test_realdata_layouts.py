"""Layout readers and format writers on the real data in ../shared/realdata (skipped when absent)."""
import math
import os
from collections import Counter
from pathlib import PurePosixPath

import pytest
from conftest import realdata_path
from PIL import Image

from imgdag.codec import read_rgb_file
from imgdag.demo.ilsvrc import make_demo_ilsvrc_val
from imgdag.errors import DataError
from imgdag.demo.imagenet import IMAGENET8_WNIDS
from imgdag.formats.class_folders import write_class_folders
from imgdag.formats.cntk_map import read_cntk_map
from imgdag.formats.cntk_map_writer import write_cntk_map
from imgdag.layouts.dog_breed import read_dog_breed
from imgdag.layouts.ilsvrc_val import val_table_from_caffe, val_table_from_devkit
from imgdag.layouts.imagenet_folders import read_imagenet_folders
from imgdag.layouts.tiny_imagenet import read_tiny_imagenet

pytestmark = pytest.mark.realdata


def test_imagenet_sample_first_8_classes_make_imagenet8_maps(tmp_path):
    sample = realdata_path("imagenet-sample")
    files = sorted(sample.glob("n*_*.JPEG"))[:8]
    for split in ("train", "validation"):
        for f in files:
            wnid = f.name.split("_")[0]
            (tmp_path / "raw" / split / wnid).mkdir(parents=True)
            os.link(f, tmp_path / "raw" / split / wnid / f.name)
    reading = read_imagenet_folders(tmp_path / "raw")
    assert reading.classes == IMAGENET8_WNIDS
    write_cntk_map(tmp_path / "train_map.txt", reading.records("train"))
    write_cntk_map(tmp_path / "val_map.txt", reading.records("validation"), image_root=tmp_path / "raw")
    for name in ("train_map.txt", "val_map.txt"):
        rows = read_cntk_map(tmp_path / name)
        assert [label for _, label in rows] == list(range(8))
        assert [p.rsplit("/", 1)[1] for p, _ in rows] == [f.name for f in files]


def test_tiny_imagenet_real_layout():
    raw = realdata_path("tiny-imagenet-200")
    with pytest.raises(DataError, match="198 classes of the class list have no usable train image"):
        read_tiny_imagenet(raw)  # the subset has train images for 2 of its 200 classes
    reading = read_tiny_imagenet(raw, empty_classes="keep")
    assert len(reading.classes) == 200 and reading.classes == sorted(reading.classes)
    train = reading.records("train")
    assert len(train) == 1000 and {r.wnid for r in train} == {"n01443537", "n02124075"}
    assert all(0 <= v <= 63 for r in train for v in r.extras["box"])
    first = next(r for r in train if r.path.endswith("/n01443537_0.JPEG"))
    assert first.extras["box"] == (0, 10, 63, 58) and reading.classes[first.label] == "n01443537"
    kept = [k for k in reading.skipped if k.startswith("train: classes without a usable image, label index kept")]
    assert len(kept) == 1 and reading.skipped[kept[0]] == 198
    annotations = len((raw / "val/val_annotations.txt").read_text().splitlines())
    assert annotations == 10_000 and len(reading.records("val")) == 200
    assert reading.skipped["val: annotations naming a missing image"] == annotations - 200
    assert len(reading.records("test")) == 50


def test_tiny_imagenet_grayscale_comes_out_rgb():
    raw = realdata_path("tiny-imagenet-200")
    reading = read_tiny_imagenet(raw, empty_classes="keep")
    gray = [r for r in reading.records("train") if Image.open(raw / r.path).mode == "L"]
    assert len(gray) == 8
    for record in gray:
        pixels = read_rgb_file(raw / record.path)
        assert pixels.shape == (64, 64, 3)
        assert (pixels[..., 0] == pixels[..., 1]).all()


def test_dog_breed_real_counts():
    with pytest.raises(DataError, match="no usable train image"):
        read_dog_breed(realdata_path("dog-breed-identification"))  # 33 train images, 120 breeds
    reading = read_dog_breed(realdata_path("dog-breed-identification"), empty_classes="keep")
    assert len(reading.classes) == 120 and reading.classes[:2] == ["affenpinscher", "afghan_hound"]
    assert len(reading.records("train")) == 33
    assert reading.skipped["labels.csv: rows without a train image"] == 300 - 33
    assert reading.skipped["train: images without a labels.csv row"] == 300 - 33
    assert len(reading.records("test")) == 300
    assert reading.skipped["test: images without a sample_submission.csv row"] == 300
    assert reading.skipped["sample_submission.csv: rows without a test image"] == 300


@pytest.mark.parametrize("ratio", [0.1, 0.9])
def test_dog_breed_real_reorg_follows_valid_ratio(tmp_path, ratio):
    reading = read_dog_breed(realdata_path("dog-breed-identification"), empty_classes="keep")
    per_breed = Counter(r.wnid for r in reading.records("train"))
    n_valid = max(1, math.floor(min(per_breed.values()) * ratio))
    counts = write_class_folders(reading, tmp_path / "out", valid_ratio=ratio)
    assert counts.valid_per_class == n_valid
    valid = sum(min(n, n_valid) for n in per_breed.values())
    assert counts.images == {"train": 33 - valid, "valid": valid, "train_valid": 33, "test": 300}
    for breed, n in per_breed.items():
        assert len(list((tmp_path / "out/train_valid" / breed).iterdir())) == n


def test_ilsvrc_caffe_mapping_equals_labels_txt():
    root = realdata_path("ilsvrc2012-val")
    table = val_table_from_caffe(root / "caffe_val.txt", root / "synset_words.txt", images=root / "images")
    got = {PurePosixPath(r.path).name: r.label for r in table.records("val")}
    expected = {}
    for line in (root / "labels.txt").read_text().splitlines():
        name, label = line.split(",")
        expected[PurePosixPath(name.strip()).name] = int(label)
    assert len(expected) == 1300 and got == expected
    assert table.skipped == {"val: labelled images not present in the images": 50_000 - 1300}
    words = [line.split()[0] for line in (root / "synset_words.txt").read_text().splitlines()]
    assert all(words[r.label] == r.wnid for r in table.records("val"))


def test_ilsvrc_demo_devkit_and_caffe_paths_give_the_same_table(tmp_path):
    demo = make_demo_ilsvrc_val(tmp_path)
    devkit, images = demo / "ILSVRC2012_devkit_t12.tar.gz", demo / "ILSVRC2012_img_val.tar"
    caffe = (demo / "caffe_ilsvrc12/val.txt", demo / "caffe_ilsvrc12/synset_words.txt")
    for classes in (None, IMAGENET8_WNIDS):
        a = val_table_from_devkit(devkit, classes, images)
        b = val_table_from_caffe(*caffe, classes, images, devkit)
        assert a.records("val") == b.records("val") and a.classes == b.classes
