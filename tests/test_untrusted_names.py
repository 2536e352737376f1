"""Names read from the data that become paths or keys: a dog breed is a class folder, an image
id names one image, a Tiny ImageNet val image has one annotation. Anything else is an error
naming the file, before anything is written."""
import csv
import io
import shutil
import zipfile
from pathlib import Path

import pytest
from e2e import script

from imgdag.demo.dog_breed import make_demo_dog_breed
from imgdag.demo.tiny_imagenet import make_demo_tiny_imagenet
from imgdag.errors import DataError
from imgdag.extract import extract_archive
from imgdag.formats.class_folders import write_class_folders
from imgdag.layouts.dog_breed import parse_submission, read_dog_breed
from imgdag.layouts.records import ImageRecord, LayoutReading, Split
from imgdag.layouts.tiny_imagenet import parse_boxes, parse_val_annotations
from imgdag.layouts.tree import DirTree

NOT_FOLDER_NAMES = ["../../../ESCAPED", "a/b", "a\\b", "", ".", "..", "a\x00b", "two words", "a\nb"]


@pytest.fixture(scope="module")
def dog(tmp_path_factory):
    return make_demo_dog_breed(tmp_path_factory.mktemp("dog") / "raw")


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def csv_text(rows) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize("changed", [("labels.csv", "sample_submission.csv"), ("labels.csv",)],
                         ids=["labels and submission", "labels only"])
def test_a_breed_that_climbs_out_of_the_output_never_leaves_it(dog, tmp_path, changed):
    """A submission column names a class folder: refused, nothing written. A labels.csv breed that
    is no column is a counted skip, as any such breed."""
    raw = shutil.copytree(dog, tmp_path / "raw")
    for name in changed:
        path = raw / name
        path.write_text(path.read_text().replace(",beagle", ",../../../ESCAPED"))
    work = tmp_path / "a/b/c"
    work.mkdir(parents=True)
    before = files_under(tmp_path)
    keep = ["--empty-classes", "keep"] if len(changed) == 1 else []  # beagle's images are left out
    done = script("reorg_dog_breed.py", "--raw", raw, "--out", work / "out", "--lists-dir", work / "lists", *keep,
                  ok=len(changed) == 1)
    if len(changed) == 1:
        assert "images of a breed not in sample_submission.csv" in done.stdout, done.stdout
        assert not [p for p in files_under(tmp_path) if p not in before and work not in p.parents]
        return
    message = done.stderr.rsplit("error: ", 1)[1].strip()
    assert "Traceback" not in done.stderr and "\n" not in message
    assert "sample_submission.csv: header:" in message and "'../../../ESCAPED' is not a plain folder name" in message
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("breed", NOT_FOLDER_NAMES)
def test_a_breed_column_that_is_not_a_plain_folder_name_is_refused(breed):
    text = csv_text([["id", "beagle", breed, "pug"], ["x", "0.3", "0.3", "0.3"]])
    with pytest.raises(DataError, match="is not a plain folder name") as e:
        parse_submission(text, "sample_submission.csv")
    assert e.value.path == "sample_submission.csv" and repr(breed) in e.value.problem


def test_breeds_that_differ_only_by_case_are_classes_of_their_own():
    assert parse_submission("id,Beagle,beagle\nx,0.5,0.5\n", "s.csv") == (["Beagle", "beagle"], ["x"])


@pytest.mark.parametrize("wnid", ["../escaped", "a/b", ".."])
def test_the_class_folder_writer_refuses_a_class_that_is_not_a_plain_folder_name(tmp_path, wnid):
    """Whatever reader built the reading: a class name is never a path."""
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/1.jpg").write_bytes(b"jpeg")
    (tmp_path / "raw/2.jpg").write_bytes(b"jpeg")
    tree = DirTree(tmp_path / "raw")
    train = [ImageRecord(f"{i}.jpg", 0, wnid) for i in (1, 2)]
    reading = LayoutReading([wnid], {"train": Split(tree, train), "test": Split(tree, [])})
    with pytest.raises(DataError, match=r"out: nothing written: class name .* is not a plain folder name"):
        write_class_folders(reading, tmp_path / "deep/out", valid_ratio=0.5)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["1.jpg", "2.jpg", "raw"]


@pytest.fixture(scope="module")
def dog_folders(dog, tmp_path_factory):
    """The demo dog-breed data with train/ and test/ extracted."""
    root = tmp_path_factory.mktemp("dog_folders")
    for name in ("labels.csv", "sample_submission.csv"):
        shutil.copy(dog / name, root / name)
    for split in ("train", "test"):
        with zipfile.ZipFile(dog / f"{split}.zip") as zf:
            zf.extractall(root)
    return root


@pytest.mark.parametrize("split", ["train", "test"])
def test_two_images_of_one_id_are_an_error_naming_both(dog_folders, tmp_path, split):
    raw = shutil.copytree(dog_folders, tmp_path / "raw")
    jpeg = sorted((raw / split).glob("*.jpg"))[0]
    shutil.copy(jpeg, jpeg.with_suffix(".png"))
    with pytest.raises(DataError, match=rf"a second image of id {jpeg.stem}") as e:
        read_dog_breed(raw)
    named = {Path(e.value.path).name, e.value.problem.split("beside ")[1].split()[0]}
    assert named == {jpeg.name, jpeg.with_suffix(".png").name}


def test_the_extracted_dog_folders_read_as_the_zips_do(dog, dog_folders):
    """The control for the case above: one image per id reads without an error."""
    assert len(read_dog_breed(dog_folders).records("test")) == len(read_dog_breed(dog).records("test"))


@pytest.mark.parametrize("second_wnid", ["n01443537", "n09999999"])
def test_a_val_image_annotated_twice_is_an_error(second_wnid):
    text = ("val_0.JPEG\tn01443537\t0\t0\t10\t10\n"
            "val_1.JPEG\tn01443537\t0\t0\t10\t10\n"
            f"val_0.JPEG\t{second_wnid}\t1\t1\t20\t20\n")
    with pytest.raises(DataError, match=r"line 3: image val_0.JPEG appears twice") as e:
        parse_val_annotations(text, "val/val_annotations.txt")
    assert e.value.path == "val/val_annotations.txt"


def test_a_train_image_boxed_twice_is_an_error():
    text = "n01443537_0.JPEG\t0\t0\t10\t10\nn01443537_0.JPEG\t1\t1\t20\t20\n"
    with pytest.raises(DataError, match=r"line 2: image n01443537_0.JPEG appears twice") as e:
        parse_boxes(text, "train/n01443537/n01443537_boxes.txt")
    assert e.value.path == "train/n01443537/n01443537_boxes.txt"


def test_write_tiny_index_names_the_repeated_val_image(tmp_path):
    make_demo_tiny_imagenet(tmp_path / "tiny")
    extract_archive(tmp_path / "tiny/tiny-imagenet-200.zip", tmp_path / "x")
    annotations = tmp_path / "x/tiny-imagenet-200/val/val_annotations.txt"
    lines = annotations.read_text().splitlines()
    first = lines[0].split("\t")
    lines.append("\t".join([first[0], "n09999999", *first[2:]]))
    annotations.write_text("\n".join(lines) + "\n")
    done = script("write_tiny_index.py", "--raw", tmp_path / "x", "--out", tmp_path / "out", ok=False)
    assert (f"val_annotations.txt: line {len(lines)}: image {first[0]} appears twice"
            in done.stderr.rsplit("error: ", 1)[1])
    assert not (tmp_path / "out").exists()
