"""Tiny ImageNet steps: the array cache writer, index table -> uint8 cache, predictions from a cache."""
import csv
import json
import os
import zipfile
from collections import Counter

import numpy as np
import pytest
from e2e import run_script_here, script

from imgdag import arraycache_writer, codec
from imgdag.arraycache import cache_paths, cache_stem, read_array_cache
from imgdag.arraycache_writer import write_images_cache
from imgdag.demo.tiny_imagenet import make_demo_tiny_imagenet
from imgdag.errors import DataError
from imgdag.extract import extract_archive
from imgdag.formats.class_list import read_class_list
from imgdag.formats.index_table import read_tiny_index
from imgdag.layouts.tree import open_tree
from imgdag.codec import decode_rgb
from imgdag.models import build_model, save_trained_model


def test_help():
    assert "usage:" in script("tiny_to_array.py", "--help").stdout


def test_write_images_cache_round_trip_and_errors(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 3, 3), dtype=np.uint8)
    items = ((f"img{i}", image, i * 2) for i, image in enumerate(images))
    assert write_images_cache(tmp_path / "c", 5, items, "src") == 5
    read_images, labels = read_array_cache(tmp_path / "c")
    assert np.array_equal(read_images, images) and labels.tolist() == [0, 2, 4, 6, 8]
    odd = [("a.jpg", images[0], 0), ("b.jpg", np.zeros((4, 4, 3), np.uint8), 1)]
    with pytest.raises(DataError, match=r"b\.jpg: image is \(4, 4, 3\), expected \(4, 3, 3\)"):
        write_images_cache(tmp_path / "d", 2, iter(odd), "src")
    with pytest.raises(DataError, match="src: 1 images, expected 2"):
        write_images_cache(tmp_path / "e", 2, iter(odd[:1]), "src")
    assert not (tmp_path / "d.images.npy").exists() and not (tmp_path / "e.labels.npy").exists()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The demo zip, its index tables and the val and test caches."""
    root = tmp_path_factory.mktemp("tiny")
    raw = make_demo_tiny_imagenet(root)
    script("write_tiny_index.py", "--raw", raw, "--out", root / "index")
    for split in ("val", "test"):
        done = script("tiny_to_array.py", "--raw", raw, "--index", root / f"index/{split}.csv",
                      "--out", root / f"cache/{split}", "--workers", "2")
        assert f"{split}.csv: " in done.stdout and " images from " in done.stdout
    return root


def test_cache_stem_undoes_cache_paths():
    """The rules name a cache's files; its scripts take the stem (rules/*.smk `cache_stem`)."""
    images, labels = cache_paths("data/a b/cache/train")
    assert cache_stem(images) == "data/a b/cache/train"
    with pytest.raises(ValueError, match="train.labels.npy"):
        cache_stem(labels)


def test_index_table_to_cache_rgb_in_table_order(tiny):
    records = read_tiny_index(tiny / "index/val.csv")
    images, labels = read_array_cache(tiny / "cache/val")
    assert images.shape == (50, 64, 64, 3) and images.dtype == np.uint8
    assert labels.tolist() == [r.label for r in records]
    _, test_labels = read_array_cache(tiny / "cache/test")
    assert set(test_labels.tolist()) == {-1}
    # the demo draws about 5% of images grayscale: they come out as 3 equal channels
    gray = [(img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
            for img in images]
    assert 0 < sum(gray) < len(gray)


def test_tiny_to_array_names_a_bad_image(tiny, tmp_path):
    table = (tiny / "index/val.csv").read_text().splitlines()
    table[30] = table[30].replace("val_29.JPEG", "val_404.JPEG")  # decoded by a worker
    (tmp_path / "val.csv").write_text("\n".join(table) + "\n")
    done = script("tiny_to_array.py", "--raw", tiny / "tiny-imagenet-200.zip", "--index", tmp_path / "val.csv",
                  "--out", tmp_path / "cache", "--workers", "2", "--bad-images", "error", ok=False)
    assert "val_404.JPEG" in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.glob("cache*"))  # no half-written cache under a real name


@pytest.mark.parametrize("row", [0, 30])  # the row that fixes the shape, a row a worker decodes
def test_tiny_to_array_skips_a_bad_image_from_the_cache_and_its_rows(tiny, tmp_path, row):
    """checks.bad_images skip: the cache's decode is the check; the image is counted, named, and
    left out of the cache and of its index table, the other rows as they were."""
    raw = tmp_path / "raw"
    extract_archive(tiny / "tiny-imagenet-200.zip", raw)
    records = read_tiny_index(tiny / "index/val.csv")
    (raw / records[row].path).write_bytes(b"\xff\xd8 not a JPEG")
    done = script("tiny_to_array.py", "--raw", raw, "--index", tiny / "index/val.csv", "--out", tmp_path / "cache",
                  "--workers", "2")
    assert "49 images from" in done.stdout and "skipped: 1 images that do not decode" in done.stdout
    assert f"skipped 1 images:\n  {raw / records[row].path}: not a decodable image" in done.stderr
    images, labels = read_array_cache(tmp_path / "cache")
    full, _ = read_array_cache(tiny / "cache/val")
    kept = [i for i in range(50) if i != row]
    assert np.array_equal(images, full[kept]) and labels.tolist() == [records[i].label for i in kept]
    assert read_tiny_index(tmp_path / "cache.index.csv") == [records[i] for i in kept]


def test_a_files_cache_of_no_image_that_decodes_is_an_error(tmp_path):
    for name in ("a.JPEG", "b.JPEG"):
        (tmp_path / name).write_bytes(b"")
    with open_tree(tmp_path) as tree, pytest.raises(DataError, match=r"list.csv: none of its 2 images decodes "
                                                                     r"\(the first: .*a\.JPEG: not a decodable"):
        arraycache_writer.write_files_cache(tmp_path / "c", tree, ["a.JPEG", "b.JPEG"], [0, 1], "list.csv", "skip")
    assert not list(tmp_path.glob("c.*"))


def test_tiny_to_array_refuses_a_class_left_without_images(tiny, tmp_path):
    raw = tmp_path / "raw"
    extract_archive(tiny / "tiny-imagenet-200.zip", raw)
    records = read_tiny_index(tiny / "index/val.csv")
    wnid = records[0].wnid
    for r in records:
        if r.wnid == wnid:
            (raw / r.path).write_bytes(b"")
    args = ["--raw", raw, "--index", tiny / "index/val.csv", "--out", tmp_path / "cache"]
    done = script("tiny_to_array.py", *args, ok=False)
    assert f"val.csv: 1 classes have no image that decodes ({wnid})" in done.stderr
    assert not list(tmp_path.glob("cache*"))
    done = script("tiny_to_array.py", *args, "--empty-classes", "keep")
    assert f"1 classes without an image that decodes, label index kept ({wnid})" in done.stdout


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_write_every_chunk_in_table_order(tiny, tmp_path, monkeypatch, workers):
    monkeypatch.setattr(arraycache_writer, "CHUNK", 7)  # 50 images: 8 chunks over the workers
    records = read_tiny_index(tiny / "index/val.csv")
    with zipfile.ZipFile(tiny / "tiny-imagenet-200.zip") as z:
        expected = np.stack([decode_rgb(z.read(r.path), r.path) for r in records])
    with open_tree(tiny / "tiny-imagenet-200.zip") as tree:
        assert arraycache_writer.write_files_cache(tmp_path / "c", tree, [r.path for r in records],
                                                   [r.label for r in records], "val.csv",
                                                   "error", workers) == {}
    images, labels = read_array_cache(tmp_path / "c")
    assert np.array_equal(images, expected)
    assert labels.tolist() == [r.label for r in records]


def test_predict_from_a_cache_names_rows_by_the_index_table(tiny, tmp_path):
    classes = read_class_list(tiny / "index/classes.txt")
    model = build_model("resnet18_64px", len(classes))
    save_trained_model(tmp_path / "model.pt", model, "resnet18_64px", classes,
                       {"size": [64, 64], "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3},
                       {"model_args": {}})
    script("predict.py", "--model", tmp_path / "model.pt", "--cache", tiny / "cache/test",
           "--names", tiny / "index/test.csv", "--out", tmp_path / "pred.csv")
    with open(tmp_path / "pred.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [r.path for r in read_tiny_index(tiny / "index/test.csv")]
    assert {r["label"] for r in rows} <= set(classes)
    done = script("predict.py", "--model", tmp_path / "model.pt", "--cache", tiny / "cache/test",
                  "--names", tiny / "index/val.csv", "--out", tmp_path / "bad.csv", ok=False)
    assert "val.csv: expected a CSV with a file column and 20 rows" in done.stderr


def test_train_refuses_classes_that_disagree_with_num_classes(tiny, tmp_path):
    params = {"model": "resnet18_64px", "num_classes": 200, "epochs": 1, "batch_size": 8,
              "optimizer": "adam", "lr": 0.001, "seed": 0, "checkpoint_every": 1,
              "normalize": {"mean": [0.5] * 3, "std": [0.25] * 3}}
    done = script("train.py", "--train-cache", tiny / "cache/val", "--val-cache",
                  tiny / "cache/val", "--classes", tiny / "index/classes.txt", "--params",
                  json.dumps(params), "--model-out", tmp_path / "m.pt", "--log-csv",
                  tmp_path / "log.csv", "--checkpoint-dir", tmp_path / "ck", ok=False)
    assert "classes.txt: 10 classes but num_classes is 200" in done.stderr


def test_each_job_walks_the_raw_folder_once_and_each_image_decodes_once(tiny, tmp_path, monkeypatch):
    """The index job and each cache job (2 workers) list the raw folder once (the workers reuse the
    listing), and over the whole route every image is decoded once (the cache's decode is the check)."""
    raw = tmp_path / "raw"
    extract_archive(tiny / "tiny-imagenet-200.zip", raw)
    log = tmp_path / "calls.log"
    scandir, decode = os.scandir, codec._decode

    def logged(line):
        with open(log, "a") as f:  # appended to by this process and its forked workers alike
            f.write(line + "\n")

    def counting_scandir(path=".", *args):
        if os.fspath(path) == str(raw):
            logged("walk")
        return scandir(path, *args)

    def counting_decode(data, source, *args, **kwargs):
        logged(f"decode {os.fspath(source).removeprefix(f'{raw}/')}")  # the file, relative to the raw folder
        return decode(data, source, *args, **kwargs)

    def calls():  # since the last call
        lines = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return lines

    monkeypatch.setattr(os, "scandir", counting_scandir)
    monkeypatch.setattr(codec, "_decode", counting_decode)
    assert run_script_here(monkeypatch, "write_tiny_index.py", "--raw", raw, "--out", tmp_path / "index") == 0
    jobs = {"index": calls()}
    for split in ("train", "val", "test"):
        assert run_script_here(monkeypatch, "tiny_to_array.py", "--raw", raw, "--index", tmp_path / f"index/{split}.csv",
                          "--out", tmp_path / f"cache/{split}", "--workers", "2") == 0
        jobs[split] = calls()
    assert {job: lines.count("walk") for job, lines in jobs.items()} == {"index": 1, "train": 1, "val": 1, "test": 1}
    decodes = Counter(line.split(" ", 1)[1] for lines in jobs.values() for line in lines if line.startswith("decode "))
    assert set(decodes) == {p.relative_to(raw).as_posix() for p in raw.rglob("*.JPEG")} and len(decodes) == 370
    assert set(decodes.values()) == {1}, Counter(decodes.values())
