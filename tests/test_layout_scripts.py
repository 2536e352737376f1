"""The layout and format scripts end to end: --help, summary lines, outputs, clean errors."""
import io
import os
import subprocess
import sys
import tarfile

import pytest
from conftest import ROOT

SCRIPTS = ["make_demo.py", "extract_archive.py", "write_cntk_maps.py", "reorg_dog_breed.py",
           "write_tiny_index.py", "write_ilsvrc_val_table.py"]


def script(name, *args, ok=True):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert (done.returncode == 0) == ok, done.stderr
    return done


@pytest.mark.parametrize("name", SCRIPTS)
def test_help(name):
    assert "usage:" in script(name, "--help").stdout


def test_imagenet8_demo_to_cntk_maps(tmp_path):
    done = script("make_demo.py", "imagenet8", tmp_path / "demo")
    assert "imagenet-8.tar" in done.stdout and "1 files written" in done.stdout
    done = script("extract_archive.py", "--archive", tmp_path / "demo/imagenet-8.tar", "--out", tmp_path / "raw")
    assert "400 files" in done.stdout
    done = script("write_cntk_maps.py", "--raw", tmp_path / "raw", "--out", tmp_path / "maps")
    assert "train_map.txt 320 lines, val_map.txt 80 lines, 8 classes; skipped: none" in done.stdout
    first = (tmp_path / "maps/train_map.txt").read_text().splitlines()[0].split("\t")
    assert first[1] == "0" and (tmp_path / "raw" / first[0]).is_file()
    assert len((tmp_path / "maps/classes.txt").read_text().split()) == 8


def test_tiny_demo_to_index_tables(tmp_path):
    script("make_demo.py", "tiny_imagenet", tmp_path / "demo")
    done = script("write_tiny_index.py", "--raw", tmp_path / "demo/tiny-imagenet-200.zip", "--out", tmp_path / "idx")
    assert "train.csv 300 rows, val.csv 50 rows, test.csv 20 rows, 10 classes" in done.stdout
    assert (tmp_path / "idx/train.csv").read_text().startswith("file,label,wnid,x0,y0,x1,y1\n")


def test_dog_demo_reorg(tmp_path):
    script("make_demo.py", "dog_breed", tmp_path / "demo")
    done = script("reorg_dog_breed.py", "--raw", tmp_path / "demo", "--out", tmp_path / "folders",
                  "--valid-ratio", "0.2")
    assert "valid 12" in done.stdout and "2 valid per class" in done.stdout and "test 20" in done.stdout
    assert len(list((tmp_path / "folders/test/unknown").iterdir())) == 20


def test_ilsvrc_demo_tables_from_both_sources_are_identical(tmp_path):
    script("make_demo.py", "ilsvrc_val", tmp_path / "demo")
    d = tmp_path / "demo"
    (tmp_path / "imagenet8.txt").write_text("n01440764\nn01443537\nn01484850\nn01491361\n"
                                            "n01494475\nn01496331\nn01498041\nn01514668\n")
    common = ["--images", d / "ILSVRC2012_img_val.tar", "--classes", tmp_path / "imagenet8.txt"]
    a = script("write_ilsvrc_val_table.py", "--devkit", d / "ILSVRC2012_devkit_t12.tar.gz", *common,
               "--out", tmp_path / "a.csv")
    b = script("write_ilsvrc_val_table.py", "--caffe-val", d / "caffe_ilsvrc12/val.txt", "--synset-words",
               d / "caffe_ilsvrc12/synset_words.txt", "--devkit", d / "ILSVRC2012_devkit_t12.tar.gz", *common,
               "--out", tmp_path / "b.csv")
    assert "80 rows from the devkit, 8 classes; skipped: 16 val: images of classes not in the class list" in a.stdout
    assert "80 rows from the caffe val.txt" in b.stdout
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_bad_input_exits_1_naming_the_file(tmp_path):
    done = script("write_tiny_index.py", "--raw", tmp_path, "--out", tmp_path / "idx", ok=False)
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "wnids.txt" in done.stderr and "Traceback" not in done.stderr
    with tarfile.open(tmp_path / "evil.tar", "w") as tf:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    done = script("extract_archive.py", "--archive", tmp_path / "evil.tar", "--out", tmp_path / "x", ok=False)
    assert "error: " in done.stderr and "'../evil.txt'" in done.stderr and "evil.tar" in done.stderr
    done = script("write_ilsvrc_val_table.py", "--out", tmp_path / "v.csv", ok=False)
    assert done.returncode == 2 and "--devkit" in done.stderr
