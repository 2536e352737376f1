"""imagenet8_alexnet (through .rec files, the default data.format) and ilsvrc_alexnet_eval end to
end on the demo data, in a copy of the session's finished demo (`demo_done`); and a training run
from .rec files stopped after a checkpoint, then resumed, against one that was not.

The pipeline tests share one workspace and run in order.
"""
import csv
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT

from e2e import clone_workspace, sh
from imgdag.demo.imagenet import IMAGENET8_WNIDS, make_demo_imagenet8
from imgdag.extract import extract_archive
from imgdag.formats.cntk_map import read_cntk_map
from imgdag.formats.cntk_map_writer import write_cntk_map
from imgdag.formats.lst import LstEntry, write_lst
from imgdag.formats.recordio import RecordReader
from imgdag.formats.recordio_packer import PackOptions, pack
from imgdag.layouts.imagenet_folders import read_imagenet_folders

OUT, EVAL = "results/imagenet8_alexnet", "results/ilsvrc_alexnet_eval"
# outputs git does not hold (the metrics JSONs are committed, so alone they would be up to date)
TARGETS = [f"{OUT}/confusion.csv", f"{EVAL}/predictions.csv"]
TABLE = "data/ilsvrc_alexnet_eval/val.csv"
CHANCE = 1 / 8
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(demo_done, tmp_path_factory):
    """A copy of the session's finished demo (every recipe run by Snakemake)."""
    return clone_workspace(demo_done, tmp_path_factory.mktemp("imagenet8") / "repo")


def read_json(path):
    return json.loads(Path(path).read_text())


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_snakemake_ran_both_recipes(ws):
    for path in ["data/demo/imagenet8/imagenet-8.tar", "data/imagenet8/sha256sums.txt",
                 "data/imagenet8/classes.txt", f"{OUT}/model.pt", f"{OUT}/curves.png",
                 f"{OUT}/confusion.csv", "data/ilsvrc_val/sha256sums.txt", TABLE,
                 f"{EVAL}/predictions.csv"]:
        assert (ws / path).stat().st_size > 0, path
    for name, count in (("train_map.txt", 320), ("val_map.txt", 80)):  # paths under the extracted images
        rows = read_cntk_map(ws / "data/imagenet8" / name)
        assert len(rows) == count and all((ws / "data/imagenet8/images" / p).is_file() for p, _ in rows)
        # data.format rec: the map's images packed as they are, in map order, and trained from
        split = name.split("_")[0]
        records = list(RecordReader(ws / f"data/imagenet8/{split}.rec"))
        assert [r.image for r in records] == [(ws / "data/imagenet8/images" / p).read_bytes() for p, _ in rows]
        assert [int(r.header.label) for r in records] == [label for _, label in rows]

    metrics = read_json(ws / OUT / "metrics.json")
    assert metrics["val_images"] == 80 and metrics["val_accuracy"] > 2 * CHANCE
    assert metrics["val_top5"] >= metrics["val_accuracy"]
    assert list(read_json(ws / OUT / "per_class_accuracy.json")) == IMAGENET8_WNIDS
    assert read_json(ws / OUT / "latency.json")["ms_per_batch_16"] > 0
    log = read_csv(ws / OUT / "train_log.csv")
    epochs = yaml.safe_load((ws / "params.yaml").read_text())["recipes"]["imagenet8_alexnet"]["train"]["epochs"]
    assert [int(r["epoch"]) for r in log] == list(range(1, epochs + 1))
    assert float(log[-1]["val_top1"]) == metrics["val_accuracy"] and float(log[-1]["val_top5"]) > 0

    # the demo val tar: 80 images of the 8 classes, whose IDs map to the WNIDs only through meta.mat
    crops, info = read_json(ws / EVAL / "metrics.json"), read_json(ws / EVAL / "run_info.json")
    assert crops["images"] == 80 and info["images_not_evaluated"] == 16
    assert info["weights"]["source"] == "imagenet8_checkpoint"
    for mode in ("1-crop", "5-crop", "10-crop"):
        m = crops[mode]
        assert set(m) == {"top1_error", "top5_error"}  # the headline; the rest in run_info.json
        assert m["top1_error"] == pytest.approx(1 - info[mode]["top1_accuracy"], abs=1e-6)
        assert m["top5_error"] <= m["top1_error"]
    assert info["1-crop"]["top1_accuracy"] > 2 * CHANCE  # a wrong ID -> WNID mapping gives chance
    predictions = read_csv(ws / EVAL / "predictions.csv")
    assert len(predictions) == 80
    assert all(IMAGENET8_WNIDS[int(r["label"])] == r["wnid"] for r in predictions)
    assert "Nothing to be done" in sh(["snakemake", "-n", *TARGETS], ws).stdout
    repacked = sh(["snakemake", "-n", "--forcerun", "imagenet8_rec", *TARGETS], ws).stdout
    assert "imagenet8_train" in repacked and "imagenet8_evaluate" in repacked  # they read the .rec


def test_caffe_label_files_give_the_devkit_table(ws):
    devkit_table = (ws / TABLE).read_text()
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["datasets"]["ilsvrc_val"]["labels"] = "caffe"  # the devkit then only adds the IDs
    (ws / "caffe.yaml").write_text(yaml.safe_dump(params))
    sh(["snakemake", "--cores", "1", TABLE, "--configfile", "caffe.yaml"], ws)
    assert (ws / TABLE).read_text() == devkit_table
    params["datasets"]["ilsvrc_val"]["devkit"] = ""  # Caffe's files alone: no IDs
    (ws / "caffe.yaml").write_text(yaml.safe_dump(params))
    sh(["snakemake", "--cores", "1", TABLE, "--configfile", "caffe.yaml"], ws)
    without_ids = read_csv(ws / TABLE)
    assert all(r.pop("ilsvrc2012_id") == "" for r in without_ids)
    assert without_ids == [{k: v for k, v in r.items() if k != "ilsvrc2012_id"}
                           for r in csv.DictReader(devkit_table.splitlines())]


def test_a_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    make_demo_imagenet8(tmp_path, train_per_class=2, val_per_class=1)
    extract_archive(tmp_path / "imagenet-8.tar", tmp_path / "images")
    reading = read_imagenet_folders(tmp_path / "images")
    for split, name in (("train", "train"), ("validation", "val")):  # as the imagenet8_rec rule packs
        records = reading.records(split)
        write_lst(tmp_path / f"{name}.lst", [LstEntry(i, (float(r.label),), r.path) for i, r in enumerate(records)])
        pack(tmp_path / f"{name}.lst", tmp_path / "images", tmp_path / f"{name}.rec", tmp_path / f"{name}.idx",
             PackOptions(pass_through=True))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["recipes"]["imagenet8_alexnet"]["train"]
    params.update(epochs=2, batch_size=8, device="cpu")

    def train(out, checkpoint_every, *extra):
        every = json.dumps({**params, "checkpoint_every": checkpoint_every})  # resume ignores it
        return sh([sys.executable, "scripts/train.py", "--train-rec", tmp_path / "train.rec",
                   "--val-rec", tmp_path / "val.rec", "--params", every, "--model-out", out / "model.pt", "--log-csv", out / "log.csv",
                   "--checkpoint-dir", out / "checkpoints", "--threads", "1", *extra], ROOT).stdout

    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    train(whole, 2, "--num-workers", "0")
    shutil.rmtree(whole / "checkpoints")  # ~0.7 GB each
    assert "stopping after 1 epoch" in train(resumed, 1, "--num-workers", "2", "--stop-after", "1")
    assert (resumed / "checkpoints/epoch_001.pt").exists() and not (resumed / "model.pt").exists()
    assert "resuming from" in train(resumed, 1, "--num-workers", "2")

    a, b = (torch.load(d / "model.pt", weights_only=True) for d in (whole, resumed))
    assert a["classes"] == b["classes"] == [str(i) for i in range(8)]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    logs = [[{k: v for k, v in r.items() if k != "seconds"} for r in read_csv(d / "log.csv")]
            for d in (whole, resumed)]
    assert logs[0] == logs[1] and len(logs[0]) == 2


@pytest.mark.parametrize("mode", ["error", "skip"])
def test_a_corrupt_jpeg_never_reaches_training_through_the_map_route(tmp_path, mode):
    """data.format map: the map writer fails naming a truncated JPEG (error), or leaves it out
    and training runs on the rest (skip); without the check, training meets it."""
    make_demo_imagenet8(tmp_path, train_per_class=2, val_per_class=1)
    images = tmp_path / "images"
    extract_archive(tmp_path / "imagenet-8.tar", images)
    bad = sorted(images.glob("train/*/*.JPEG"))[3]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    maps = sh([sys.executable, "scripts/write_cntk_maps.py", "--raw", images, "--out", tmp_path / "maps",
               "--bad-images", mode], ROOT, check=mode == "skip")
    if mode == "error":
        assert maps.returncode == 1 and f"error: {bad}: not a decodable image" in maps.stderr
        assert not (tmp_path / "maps").exists()
        return
    assert "skipped: 1 train: images that do not decode" in maps.stdout and str(bad) in maps.stderr
    rows = read_cntk_map(tmp_path / "maps/train_map.txt")
    assert len(rows) == 15 and str(bad.relative_to(images)) not in {p for p, _ in rows}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["recipes"]["imagenet8_alexnet"]["train"]
    params = json.dumps({**params, "epochs": 1, "batch_size": 16, "device": "cpu"})

    def train(train_map):
        return sh([sys.executable, "scripts/train.py", "--train-map", train_map, "--image-root", images,
                   "--val-map", tmp_path / "maps/val_map.txt", "--params", params, "--model-out",
                   tmp_path / "model.pt", "--log-csv", tmp_path / "log.csv", "--checkpoint-dir",
                   tmp_path / "checkpoints", "--threads", "1", "--num-workers", "0"], ROOT, check=False)

    trained = train(tmp_path / "maps/train_map.txt")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert len(read_csv(tmp_path / "log.csv")) == 1
    unchecked = read_imagenet_folders(images)  # the same folders, images not checked
    write_cntk_map(tmp_path / "unchecked_map.txt", unchecked.records("train"))
    failed = train(tmp_path / "unchecked_map.txt")
    assert failed.returncode != 0 and str(bad.relative_to(images)) in failed.stderr
