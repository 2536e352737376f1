"""Dog-breed steps: folder lists from the reorg, feature batches, the head script's outputs."""
import csv
import importlib.util
import json

import numpy as np
import pytest
import torch
from conftest import ROOT
from e2e import script

from imgdag.batches import TensorBatches
from imgdag.demo.dog_breed import DOG_BREEDS, make_demo_dog_breed
from imgdag.errors import DataError
from imgdag.formats.class_folders import list_class_folders
from imgdag.formats.lst import read_lst

HEAD = {"standardize": True, "hidden": 32, "dropout": 0.5, "epochs": 30, "batch_size": 8,
        "optimizer": "adam", "lr": 0.003, "weight_decay": 0.0001, "seed": 0,
        "checkpoint_every": 30, "device": "cpu"}


def head_module():
    spec = importlib.util.spec_from_file_location("head", ROOT / "scripts/train_transfer_head.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["extract_features.py", "train_transfer_head.py"])
def test_help(name):
    assert "usage:" in script(name, "--help").stdout


@pytest.fixture(scope="module")
def reorg(tmp_path_factory):
    root = tmp_path_factory.mktemp("dog")
    make_demo_dog_breed(root / "raw")
    done = script("reorg_dog_breed.py", "--raw", root / "raw", "--out", root / "folders",
                  "--valid-ratio", "0.2", "--lists-dir", root / "lists")
    assert "lists of the folders and classes.txt written" in done.stdout
    return root


def test_lists_stand_for_the_folders(reorg):
    lists = {name: read_lst(reorg / f"lists/{name}.lst")
             for name in ("train", "valid", "train_valid", "test")}
    classes = (reorg / "lists/classes.txt").read_text().split()
    assert classes == DOG_BREEDS
    for name, entries in lists.items():
        files = sorted(p.relative_to(reorg / "folders").as_posix()
                       for p in (reorg / "folders" / name).glob("*/*"))
        assert [e.path for e in entries] == files
        assert [e.index for e in entries] == list(range(len(entries)))
    for entry in lists["train"] + lists["valid"]:
        assert classes[int(entry.labels[0])] == entry.path.split("/")[1]
    assert {e.labels for e in lists["test"]} == {(-1.0,)} and len(lists["test"]) == 20
    assert len(lists["valid"]) == 2 * len(classes)  # 2 valid per class at ratio 0.2
    assert len(lists["train_valid"]) == len(lists["train"]) + len(lists["valid"])


def test_list_class_folders_refuses_an_unknown_class_folder(tmp_path):
    (tmp_path / "train/poodle").mkdir(parents=True)
    (tmp_path / "train/poodle/a.jpg").write_bytes(b"")
    (tmp_path / "classes.txt").write_text("beagle\n")
    with pytest.raises(DataError, match="poodle: class folder not named in classes.txt"):
        list_class_folders(tmp_path)


def test_tensor_batches_reproducible_per_epoch_and_cover_all():
    features = torch.arange(10, dtype=torch.float32).unsqueeze(1).repeat(1, 3)
    batches = TensorBatches(features, torch.arange(10), 4, torch.device("cpu"), shuffle=True,
                            seed=1)
    assert len(batches) == 3
    first = [y.tolist() for _, y in batches.epoch(2)]
    assert first == [y.tolist() for _, y in batches.epoch(2)]
    assert first != [y.tolist() for _, y in batches.epoch(3)]
    assert sorted(sum(first, [])) == list(range(10))
    for x, y in batches.epoch(2):  # rows follow their labels
        assert torch.equal(x[:, 0].long(), y)
    plain = [y.tolist() for _, y in TensorBatches(features, torch.arange(10), 4,
                                                   torch.device("cpu")).epoch(0)]
    assert plain == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_standardizer_weighs_backbones_alike():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(np.hstack([rng.normal(1e-5, 1e-6, (50, 3)), rng.normal(1e5, 1e4, (50, 2))]))
    scaled = head_module().standardizer(x, [3, 2])(x)
    assert torch.allclose(scaled.mean(0), torch.zeros(5, dtype=x.dtype), atol=1e-6)
    for block in scaled.split([3, 2], dim=1):
        assert abs(block.std(0).mean().item() - 1) < 1e-6


def write_features(path, backbone, ids, features, weights_sha256="random"):
    torch.save({"key": f"key-{backbone}", "backbone": backbone, "weights_sha256": weights_sha256,
                "size": 32, "ids": ids, "features": torch.as_tensor(features)}, path)


def test_head_writes_metrics_and_a_submission_in_sample_order(reorg, tmp_path):
    """Features that encode the label: the head must learn them, and the submission must follow
    sample_submission.csv's ids and columns."""
    ids = [e.path for name in ("train_valid", "test") for e in read_lst(reorg / f"lists/{name}.lst")]
    labels = np.array([int(e.labels[0]) for name in ("train_valid", "test")
                       for e in read_lst(reorg / f"lists/{name}.lst")])
    rng = np.random.default_rng(0)
    onehot = np.eye(len(DOG_BREEDS))[np.maximum(labels, 0)] * (labels >= 0)[:, None]
    write_features(tmp_path / "a.pt", "resnet18", ids, rng.normal(0, 0.1, (len(ids), 4)) + 1e3)
    write_features(tmp_path / "b.pt", "alexnet", ids,
                   (onehot * 1e-3 + rng.normal(0, 1e-4, onehot.shape)).astype(np.float32), "abc")
    lists = [reorg / f"lists/{name}.lst" for name in ("train", "valid", "train_valid", "test")]
    out = tmp_path / "out"
    done = script("train_transfer_head.py", "--features", tmp_path / "a.pt", tmp_path / "b.pt",
                  "--train", lists[0], "--valid", lists[1], "--train-valid", lists[2],
                  "--test", lists[3], "--classes", reorg / "lists/classes.txt",
                  "--sample-submission", reorg / "raw/sample_submission.csv",
                  "--params", json.dumps(HEAD), "--metrics-out", out / "metrics.json",
                  "--run-info-out", out / "run_info.json", "--log-csv", out / "log.csv", "--curves-png", out / "curves.png",
                  "--retrain-log-csv", out / "retrain.csv", "--submission-out", out / "sub.csv",
                  "--checkpoint-dir", out / "ck")
    assert "validation log loss" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_accuracy"] == 1.0 and metrics["val_log_loss"] < 0.5
    assert set(metrics) == {"val_log_loss", "val_accuracy", "val_images"}  # the headline
    info = json.loads((out / "run_info.json").read_text())
    assert info["feature_dims"] == 4 + len(DOG_BREEDS)
    assert info["backbones"]["a"]["pretrained"] is False
    assert info["backbones"]["b"] == {"backbone": "alexnet", "size": 32, "features": len(DOG_BREEDS),
                                      "pretrained": True, "weights_sha256": "abc"}
    with open(reorg / "raw/sample_submission.csv") as f:
        sample = list(csv.reader(f))
    with open(out / "sub.csv") as f:
        sub = list(csv.reader(f))
    assert sub[0] == sample[0]
    assert [row[0] for row in sub[1:]] == [row[0] for row in sample[1:]]
    probs = np.array([[float(v) for v in row[1:]] for row in sub[1:]])
    assert np.abs(probs.sum(1) - 1).max() < 1e-6
    with open(out / "log.csv") as f:
        assert len(list(csv.DictReader(f))) == HEAD["epochs"]
    assert (out / "curves.png").stat().st_size > 0 and (out / "ck/train_valid/last.pt").exists()


def test_head_refuses_features_of_other_images(reorg, tmp_path):
    ids = [e.path for e in read_lst(reorg / "lists/train_valid.lst")]
    write_features(tmp_path / "a.pt", "resnet18", ids, np.zeros((len(ids), 2), np.float32))
    write_features(tmp_path / "b.pt", "alexnet", ids[1:], np.zeros((len(ids) - 1, 2), np.float32))
    done = script("train_transfer_head.py", "--features", tmp_path / "a.pt", tmp_path / "b.pt",
                  *[arg for name in ("train", "valid", "train-valid", "test")
                    for arg in (f"--{name}", reorg / f"lists/{name.replace('-', '_')}.lst")],
                  "--classes", reorg / "lists/classes.txt",
                  "--sample-submission", reorg / "raw/sample_submission.csv",
                  "--params", json.dumps(HEAD), "--metrics-out", tmp_path / "m.json",
                  "--run-info-out", tmp_path / "i.json",
                  "--log-csv", tmp_path / "l.csv", "--retrain-log-csv", tmp_path / "r.csv",
                  "--submission-out", tmp_path / "s.csv", "--checkpoint-dir", tmp_path / "ck",
                  ok=False)
    assert "b.pt: holds other images than" in done.stderr and "Traceback" not in done.stderr
