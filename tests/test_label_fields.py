"""Hostile fields in label files, val tables and image folders: a label that str.isdigit()
takes but is not ASCII digits, two val images of one name, a FIFO or a non-UTF-8 name in
predict.py's folder, a table row that leads outside the images folder. Each is a one-line
error naming the file (and line), or a counted skip; never a traceback, a hang or a silent drop."""
import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from e2e import ROOT, cli_env, run_script_here
from PIL import Image

from imgdag.demo.ilsvrc import make_demo_ilsvrc_val
from imgdag.errors import DataError
from imgdag.extract import extract_archive
from imgdag.formats.cntk_map import read_cntk_map
from imgdag.formats.index_table import read_ilsvrc_val_table, read_tiny_index
from imgdag.formats.lst import LstEntry, read_lst
from imgdag.formats.recordio import read_idx
from imgdag.layouts.ilsvrc_val import parse_caffe_val, parse_ground_truth, val_table_from_devkit
from imgdag.layouts.tiny_imagenet import parse_boxes, parse_val_annotations
from imgdag.models import build_model, save_trained_model

# "²" passes str.isdigit() but int() refuses it; int("٣") is 3, int("2_0") is 20: none is a label
NOT_ASCII_DIGITS = ["\u00b2", "\u0663", "2_0"]


@pytest.mark.parametrize("label", [*NOT_ASCII_DIGITS, "-1"])  # a label is never negative
def test_a_map_label_that_is_not_ascii_digits_is_an_error_naming_the_line(monkeypatch, capsys, tmp_path, label):
    (tmp_path / "map.txt").write_text(f"train/n1/a.JPEG\t0\ntrain/n1/b.JPEG\t{label}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"map.txt: line 2: expected path<TAB>label"):
        read_cntk_map(tmp_path / "map.txt")
    assert run_script_here(monkeypatch, "make_lst.py", tmp_path / "out", "--from-map", tmp_path / "map.txt") == 1
    assert "map.txt: line 2: expected path<TAB>label" in capsys.readouterr().err


@pytest.mark.parametrize("label", [*NOT_ASCII_DIGITS, "-1"])  # a label is never negative
def test_an_ilsvrc_label_that_is_not_ascii_digits_is_an_error_naming_the_line(label):
    with pytest.raises(DataError, match=r"val.txt: line 2: expected 'NAME label'"):
        parse_caffe_val(f"a.JPEG 0\nb.JPEG {label}\n", "val.txt")
    with pytest.raises(DataError, match=r"ground_truth.txt: line 2: .* is not an ILSVRC2012_ID"):
        parse_ground_truth(f"1\n{label}\n", "ground_truth.txt")



def tiny_folder(root, box_line: str, annotation_line: str):
    """A Tiny ImageNet folder of one class: one train image boxed by `box_line`, one val
    image annotated by `annotation_line` (images are not decoded when indexing)."""
    (root / "train/n01/images").mkdir(parents=True)
    (root / "val/images").mkdir(parents=True)
    (root / "wnids.txt").write_text("n01\n")
    (root / "words.txt").write_text("n01\tthing\n")
    (root / "train/n01/images/n01_0.JPEG").write_bytes(b"")
    (root / "train/n01/n01_boxes.txt").write_text(box_line + "\n")
    (root / "val/images/val_0.JPEG").write_bytes(b"")
    (root / "val/val_annotations.txt").write_text(annotation_line + "\n")
    (root / "test/images").mkdir(parents=True)
    (root / "test/images/test_0.JPEG").write_bytes(b"")


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_a_tiny_box_corner_that_is_not_ascii_digits_is_an_error_naming_the_line(monkeypatch, capsys, tmp_path,
                                                                                 value):
    with pytest.raises(DataError, match=rf"b.txt: line 2: box \['{value}', '1', '20', '30'\] is not four integers"):
        parse_boxes(f"n01_0.JPEG\t3\t1\t20\t30\nn01_1.JPEG\t{value}\t1\t20\t30\n", "b.txt")
    with pytest.raises(DataError, match=r"v.txt: line 1: box \['3', '1', '20', .*\] is not four integers"):
        parse_val_annotations(f"val_0.JPEG\tn01\t3\t1\t20\t{value}\n", "v.txt")
    for raw, box_line, annotation_line, where in (
            (tmp_path / "bad_box", f"n01_0.JPEG\t{value}\t1\t20\t30", "val_0.JPEG\tn01\t3\t1\t20\t30",
             "train/n01/n01_boxes.txt"),
            (tmp_path / "bad_annotation", "n01_0.JPEG\t3\t1\t20\t30", f"val_0.JPEG\tn01\t3\t1\t{value}\t30",
             "val/val_annotations.txt")):
        tiny_folder(raw, box_line, annotation_line)
        assert run_script_here(monkeypatch, "write_tiny_index.py", "--raw", raw, "--out", raw / "out") == 1
        assert f"{raw}/{where}: line 1: box " in capsys.readouterr().err


def test_tiny_boxes_of_ascii_digits_are_read(monkeypatch, tmp_path):
    assert parse_boxes("n01_0.JPEG\t3\t1\t20\t30\n", "b.txt") == {"n01_0.JPEG": (3, 1, 20, 30)}
    assert parse_val_annotations("val_0.JPEG\tn01\t0\t07\t63\t63\n", "v.txt") == [("val_0.JPEG", "n01",
                                                                                      (0, 7, 63, 63))]
    tiny_folder(tmp_path, "n01_0.JPEG\t3\t1\t20\t30", "val_0.JPEG\tn01\t0\t7\t63\t63")
    assert run_script_here(monkeypatch, "write_tiny_index.py", "--raw", tmp_path, "--out", tmp_path / "out") == 0
    assert read_tiny_index(tmp_path / "out/train.csv")[0].extras["box"] == (3, 1, 20, 30)
    assert read_tiny_index(tmp_path / "out/val.csv")[0].extras["box"] == (0, 7, 63, 63)


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_an_index_table_integer_that_is_not_ascii_digits_is_an_error_naming_the_line(tmp_path, value):
    tables = {"tiny.csv": (read_tiny_index, "file,label,wnid,x0,y0,x1,y1\na.JPEG,0,n01,,,,\n",
                           [(f"b.JPEG,{value},n01,,,,", "label"), (f"b.JPEG,1,n01,0,{value},5,5", "y0")]),
              "val.csv": (read_ilsvrc_val_table, "file,ilsvrc2012_id,wnid,label\na.JPEG,1,n01,0\n",
                          [(f"b.JPEG,2,n02,{value}", "label"), (f"b.JPEG,{value},n02,1", "ilsvrc2012_id")])}
    for table, (read, head, rows) in tables.items():
        for row, column in rows:
            (tmp_path / table).write_text(head + row + "\n")
            with pytest.raises(DataError, match=f"{table}: line 3: {column} '{value}' is not an integer"):
                read(tmp_path / table)


def test_index_tables_of_ascii_digits_are_read(tmp_path):
    (tmp_path / "tiny.csv").write_text("file,label,wnid,x0,y0,x1,y1\na.JPEG,12,n01,0,5,63,7\nt.JPEG,-1,,,,,\n")
    assert [(r.label, r.extras.get("box")) for r in read_tiny_index(tmp_path / "tiny.csv")] == [
        (12, (0, 5, 63, 7)), (-1, None)]
    (tmp_path / "val.csv").write_text("file,ilsvrc2012_id,wnid,label\na.JPEG,490,n01,999\nb.JPEG,,n02,0\n")
    assert [(r.label, r.extras["ilsvrc2012_id"]) for r in read_ilsvrc_val_table(tmp_path / "val.csv")] == [
        (999, 490), (0, None)]


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
@pytest.mark.parametrize("label", ["1.000000", "2"])  # line 1's label met again: read on a shorter way
def test_an_lst_index_that_is_not_ascii_digits_is_an_error_naming_the_line(tmp_path, value, label):
    (tmp_path / "l.lst").write_text(f"0\t1.000000\ta.jpg\n{value}\t{label}\tb.jpg\n")
    with pytest.raises(DataError, match=r"l\.lst: line 2: expected an integer index"):
        read_lst(tmp_path / "l.lst")
    (tmp_path / "l.lst").write_text(f"0\t1.000000\ta.jpg\n 20 \t{label}\tb.jpg\n")
    assert read_lst(tmp_path / "l.lst")[1] == LstEntry(20, (float(label),), "b.jpg")


@pytest.mark.parametrize("label", ["٣", "1_0", "٣.5"])
def test_an_lst_label_that_is_not_an_ascii_number_is_an_error_naming_the_line(tmp_path, label):
    """float() reads '٣' as 3.0 and '1_0' as 10.0; im2rec writes labels with %f."""
    (tmp_path / "l.lst").write_text(f"0\t1.000000\ta.jpg\n1\t{label}\tb.jpg\n2\t0.5\t{label}\tc.jpg\n")
    with pytest.raises(DataError, match=r"l\.lst: line 2: expected an integer index and numeric labels"):
        read_lst(tmp_path / "l.lst")
    (tmp_path / "l.lst").write_text(f"0\t1.000000\ta.jpg\n2\t0.5\t{label}\tc.jpg\n")
    with pytest.raises(DataError, match=r"l\.lst: line 2: expected an integer index and numeric labels"):
        read_lst(tmp_path / "l.lst")
    (tmp_path / "l.lst").write_text("0\t1.000000\ta.jpg\n1\t-2.5e1\t3\tb.jpg\n")
    assert read_lst(tmp_path / "l.lst")[1].labels == (-25.0, 3.0)


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_an_idx_number_that_is_not_ascii_digits_is_an_error_naming_the_line(tmp_path, value):
    for line in (f"{value}\t30", f"1\t{value}"):
        (tmp_path / "r.idx").write_text(f"0\t0\n{line}\n")
        with pytest.raises(DataError, match=r"r\.idx: line 2: expected key<TAB>offset"):
            read_idx(tmp_path / "r.idx")
    (tmp_path / "r.idx").write_text("0\t0\n20\t30\n")
    assert read_idx(tmp_path / "r.idx") == [(0, 0), (20, 30)]


@pytest.fixture
def ilsvrc(tmp_path):
    """The demo devkit and its val images extracted to a folder."""
    make_demo_ilsvrc_val(tmp_path / "demo")
    extract_archive(tmp_path / "demo/ILSVRC2012_img_val.tar", tmp_path / "images")
    return tmp_path


def test_two_val_images_of_one_name_are_an_error_naming_both(monkeypatch, capsys, ilsvrc):
    images = ilsvrc / "images"
    (images / "dup").mkdir()
    shutil.copy(images / "ILSVRC2012_val_00000005.JPEG", images / "dup")
    devkit = ilsvrc / "demo/ILSVRC2012_devkit_t12.tar.gz"
    assert run_script_here(monkeypatch, "write_ilsvrc_val_table.py", "--devkit", devkit, "--images", images,
                           "--out", ilsvrc / "val.csv") == 1
    err = capsys.readouterr().err
    assert (f"{images}/dup/ILSVRC2012_val_00000005.JPEG: has the same file name as "
            f"{images}/ILSVRC2012_val_00000005.JPEG") in err
    assert not (ilsvrc / "val.csv").exists()
    (images / "dup/ILSVRC2012_val_00000005.JPEG").unlink()
    assert len(val_table_from_devkit(devkit, images=images).records("val")) == 96


@pytest.mark.parametrize("file", ["../outside.JPEG", "a/../../outside.JPEG", "/tmp/outside.JPEG"])
def test_a_table_file_outside_its_folder_is_refused_naming_the_line(monkeypatch, capsys, tmp_path, file):
    (tmp_path / "val.csv").write_text(f"file,ilsvrc2012_id,wnid,label\na.JPEG,1,n01,0\n{file},2,n02,1\n")
    (tmp_path / "tiny.csv").write_text(f"file,label,wnid,x0,y0,x1,y1\na.JPEG,0,n01,,,,\n{file},1,n02,,,,\n")
    expected = f"line 3: file {file!r} leads outside the folder"
    for table, read in (("tiny.csv", read_tiny_index), ("val.csv", read_ilsvrc_val_table)):
        with pytest.raises(DataError, match=f"{table}: {expected}"):
            read(tmp_path / table)
    params = '{"weights": {"source": "torchvision", "path": "w.pth"}}'
    assert run_script_here(monkeypatch, "evaluate_crops.py", "--table", tmp_path / "val.csv", "--images", tmp_path,
                           "--model", tmp_path / "w.pth", "--params", params, "--metrics-out", tmp_path / "m.json",
                           "--run-info-out", tmp_path / "r.json", "--predictions-out", tmp_path / "p.csv") == 1
    assert f"val.csv: {expected}" in capsys.readouterr().err


@pytest.fixture
def predict_inputs(tmp_path):
    """A 10-class LeNet-5 trained-model file and a folder with one 28x28 grey PNG."""
    classes = [f"c{i}" for i in range(10)]
    spec = {"size": [28, 28], "channels": 1, "mean": [0.5], "std": [0.25]}
    save_trained_model(tmp_path / "model.pt", build_model("lenet5", 10), "lenet5", classes, spec, {})
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "imgs/a.png")
    return tmp_path


def predict(tmp_path) -> subprocess.CompletedProcess:
    """predict.py on tmp_path/imgs in a process of its own: a read that blocks fails the test."""
    return subprocess.run([sys.executable, str(ROOT / "scripts/predict.py"), "--model", tmp_path / "model.pt",
                           "--images", tmp_path / "imgs", "--out", tmp_path / "p.csv", "--device", "cpu"],
                          capture_output=True, text=True, env=cli_env(), timeout=60)


def test_predict_skips_and_counts_a_fifo_named_like_an_image(predict_inputs):
    os.mkfifo(predict_inputs / "imgs/b.png")
    done = predict(predict_inputs)
    assert done.returncode == 0, done.stderr
    assert "1 images predicted into" in done.stdout
    assert "skipped: 1 special files (FIFO, socket, device, broken or looping link)" in done.stdout
    with open(predict_inputs / "p.csv") as f:
        assert [r["file"] for r in csv.DictReader(f)] == ["a.png"]


def test_predict_refuses_a_name_that_is_not_utf8_before_predicting(predict_inputs):
    bad = predict_inputs / "imgs" / os.fsdecode(b"bad\xff.png")
    shutil.copy(predict_inputs / "imgs/a.png", bad)
    done = predict(predict_inputs)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (f"error: {predict_inputs}/imgs/bad\\xff.png: the file name is "
                                                    "not UTF-8 (the predictions CSV is UTF-8 text); rename it")
    assert "Traceback" not in done.stderr and "predict:" not in done.stderr  # stopped before any image
    assert not (predict_inputs / "p.csv").exists()
