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
from imgdag.layouts.ilsvrc_val import parse_caffe_val, parse_ground_truth, val_table_from_devkit
from imgdag.models import build_model, save_trained_model

# "²" passes str.isdigit() but int() refuses it; int("٣") is 3: neither is a label
NOT_ASCII_DIGITS = ["\u00b2", "\u0663"]


@pytest.mark.parametrize("label", NOT_ASCII_DIGITS)
def test_a_map_label_that_is_not_ascii_digits_is_an_error_naming_the_line(monkeypatch, capsys, tmp_path, label):
    (tmp_path / "map.txt").write_text(f"train/n1/a.JPEG\t0\ntrain/n1/b.JPEG\t{label}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"map.txt: line 2: expected path<TAB>label"):
        read_cntk_map(tmp_path / "map.txt")
    assert run_script_here(monkeypatch, "make_lst.py", tmp_path / "out", "--from-map", tmp_path / "map.txt") == 1
    assert "map.txt: line 2: expected path<TAB>label" in capsys.readouterr().err


@pytest.mark.parametrize("label", NOT_ASCII_DIGITS)
def test_an_ilsvrc_label_that_is_not_ascii_digits_is_an_error_naming_the_line(label):
    with pytest.raises(DataError, match=r"val.txt: line 2: expected 'NAME label'"):
        parse_caffe_val(f"a.JPEG 0\nb.JPEG {label}\n", "val.txt")
    with pytest.raises(DataError, match=r"ground_truth.txt: line 2: .* is not an ILSVRC2012_ID"):
        parse_ground_truth(f"1\n{label}\n", "ground_truth.txt")


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
