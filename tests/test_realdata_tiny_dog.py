"""The Tiny ImageNet and dog-breed recipe steps on the real data in ../shared/realdata (skipped
when absent): real layouts, sizes and quirks through the same scripts the rules run."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, realdata_path

from imgdag.arraycache import read_array_cache
from imgdag.formats.class_list import read_class_list
from imgdag.images import IMAGENET_MEAN, IMAGENET_STD
from imgdag.models import build_model, save_trained_model

pytestmark = pytest.mark.realdata


def script(name, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def test_real_tiny_imagenet_through_index_cache_and_evaluation(tmp_path):
    raw = realdata_path("tiny-imagenet-200")
    done = script("write_tiny_index.py", "--raw", raw, "--out", tmp_path / "index", "--empty-classes", "keep")
    assert "198 train: classes without a usable image, label index kept" in done.stdout
    assert "val.csv 200 rows" in done.stdout and "test.csv 50 rows" in done.stdout
    assert "9800 val: annotations naming a missing image" in done.stdout  # reported, counted
    for split in ("val", "test"):
        script("tiny_to_array.py", "--raw", raw, "--index", tmp_path / f"index/{split}.csv",
               "--out", tmp_path / f"cache/{split}")
    images, labels = read_array_cache(tmp_path / "cache/val")
    assert images.shape == (200, 64, 64, 3) and labels.min() >= 0 and labels.max() < 200
    classes = read_class_list(tmp_path / "index/classes.txt")
    torch.manual_seed(0)  # random weights: this proves the path, not the accuracy
    save_trained_model(tmp_path / "model.pt", build_model("resnet18_64px", len(classes)),
                       "resnet18_64px", classes, {"size": [64, 64], "channels": 3,
                                                  "mean": list(IMAGENET_MEAN),
                                                  "std": list(IMAGENET_STD)}, {})
    script("evaluate.py", "--model", tmp_path / "model.pt", "--test-cache", tmp_path / "cache/val",
           "--params", json.dumps({"latency_batch": 4, "latency_repeats": 1}),
           "--split", "val", "--metrics-out", tmp_path / "metrics.json",
           "--confusion-out", tmp_path / "conf.csv", "--per-class-out", tmp_path / "per_class.json",
           "--latency-out", tmp_path / "latency.json", "--classified-out", tmp_path / "classified.csv")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["val_images"] == 200 and 0 <= metrics["val_accuracy"] <= 1
    script("predict.py", "--model", tmp_path / "model.pt", "--cache", tmp_path / "cache/test",
           "--names", tmp_path / "index/test.csv", "--out", tmp_path / "pred.csv")
    with open(tmp_path / "pred.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 50 and {r["label"] for r in rows} <= set(classes)


def test_real_dog_breed_through_reorg_features_and_head(tmp_path):
    raw = realdata_path("dog-breed-identification")
    script("reorg_dog_breed.py", "--raw", raw, "--out", tmp_path / "folders", "--valid-ratio",
           "0.1", "--lists-dir", tmp_path / "lists", "--empty-classes", "keep")
    lists = {name: tmp_path / f"lists/{name}.lst" for name in ("train", "valid", "train_valid",
                                                               "test")}
    backbone = {"name": "resnet18", "weights": str(tmp_path / "absent.pth"), "size": 32}
    done = script("extract_features.py", "--backbone", json.dumps(backbone), "--root",
                  tmp_path / "folders", "--lists", lists["train_valid"], lists["test"],
                  "--cache-dir", tmp_path / "cache", "--out", tmp_path / "resnet18-32px.pt")
    assert "RANDOM weights" in done.stdout and "333 images -> 512 features" in done.stdout
    head = {"standardize": True, "hidden": 16, "dropout": 0.7, "epochs": 2, "batch_size": 16,
            "optimizer": "adam", "lr": 0.0001, "weight_decay": 0.0001, "seed": 0,
            "checkpoint_every": 2, "device": "cpu"}
    script("train_transfer_head.py", "--features", tmp_path / "resnet18-32px.pt",
           "--train", lists["train"], "--valid", lists["valid"], "--train-valid",
           lists["train_valid"], "--test", lists["test"], "--classes",
           tmp_path / "lists/classes.txt", "--sample-submission", raw / "sample_submission.csv",
           "--params", json.dumps(head), "--metrics-out", tmp_path / "metrics.json",
           "--run-info-out", tmp_path / "run_info.json", "--log-csv", tmp_path / "log.csv", "--retrain-log-csv", tmp_path / "retrain.csv",
           "--submission-out", tmp_path / "submission.csv", "--checkpoint-dir", tmp_path / "ck")
    with open(raw / "sample_submission.csv") as f:
        sample_header = next(csv.reader(f))
    with open(tmp_path / "submission.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == sample_header and len(rows[0]) == 121  # id + 120 breeds
    assert len(rows) - 1 == len(os.listdir(raw / "test")) == 300
    probs = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    assert np.abs(probs.sum(1) - 1).max() < 1e-6
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["classes"] == 120 and info["backbones"]["resnet18-32px"]["pretrained"] is False
