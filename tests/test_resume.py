"""A training run stopped after a checkpoint and rerun ends where an uninterrupted run ends."""
import csv
import json

import numpy as np
import pytest
import torch

from e2e import ROOT, sh

PARAMS = {"model": "lenet5", "num_classes": 10, "epochs": 4, "batch_size": 32,
          "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4,
          "lr_schedule": "cosine", "seed": 7, "checkpoint_every": 2, "device": "cpu",
          "normalize": {"mean": [0.5], "std": [0.25]},
          "augment": {"crop_min": 24, "crop_max": 28, "max_degrees": 15}}


@pytest.fixture
def caches(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 192), ("val", 64)):
        np.save(tmp_path / f"{split}.images.npy", rng.integers(0, 256, (n, 28, 28, 1), np.uint8))
        np.save(tmp_path / f"{split}.labels.npy", rng.integers(0, 10, n).astype(np.int64))
    return tmp_path


def train(caches, out, *extra):
    return sh(["python", ROOT / "scripts/train.py", "--train-cache", caches / "train",
               "--val-cache", caches / "val", "--params", json.dumps(PARAMS),
               "--model-out", out / "model.pt", "--log-csv", out / "log.csv",
               "--checkpoint-dir", out / "ckpt", "--threads", "1", *extra], ROOT)


def history(out):
    with open(out / "log.csv") as f:
        return list(csv.DictReader(f))


def test_resume_matches_uninterrupted_run(caches, tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    train(caches, whole)
    first = train(caches, resumed, "--stop-after", "2")
    assert "stopping after 2 epoch(s)" in first.stdout
    assert not (resumed / "model.pt").exists()
    assert (resumed / "ckpt" / "epoch_002.pt").exists()
    second = train(caches, resumed)
    assert "resuming from" in second.stdout and "after epoch 2" in second.stdout
    assert history(resumed) == history(whole) and len(history(whole)) == 4
    a = torch.load(whole / "model.pt", weights_only=True)["model"]
    b = torch.load(resumed / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_run_gives_the_same_bytes(caches, tmp_path):
    """Same seed and threads twice: identical per-epoch log (kept in git: no wall-clock time in
    it), model.pt and checkpoint bytes (torch.save would name its zip entries after a random
    temporary file name if given one); the seconds go to the times CSV."""
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        sh(["python", ROOT / "scripts/train.py", "--train-cache", caches / "train", "--val-cache", caches / "val",
            "--params", json.dumps({**PARAMS, "epochs": 2, "checkpoint_every": 1}),
            "--model-out", out / "model.pt", "--log-csv", out / "log.csv", "--times-csv", out / "times.csv",
            "--checkpoint-dir", out / "ckpt", "--threads", "1"], ROOT)
    files = ["log.csv", "model.pt", "ckpt/epoch_001.pt", "ckpt/epoch_002.pt"]
    assert [f for f in files if (runs[0] / f).read_bytes() != (runs[1] / f).read_bytes()] == []
    with open(runs[0] / "times.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f) if float(row["seconds"]) > 0] == ["1", "2"]


def test_checkpoint_of_other_params_is_not_resumed(caches, tmp_path):
    out = tmp_path / "run"
    train(caches, out, "--stop-after", "2")
    PARAMS["lr"], lr = 0.01, PARAMS["lr"]
    try:
        done = train(caches, out)
    finally:
        PARAMS["lr"] = lr
    assert "removing the checkpoints" in done.stdout and "resuming" not in done.stdout
    assert len(history(out)) == 4


def test_checkpoint_of_other_data_is_not_resumed(caches, tmp_path):
    out = tmp_path / "run"
    train(caches, out)
    labels = np.load(caches / "train.labels.npy")
    np.save(caches / "train.labels.npy", (labels + 1) % 10)  # the data changed, params did not
    done = train(caches, out)
    assert "removing the checkpoints" in done.stdout and "resuming" not in done.stdout


def test_checkpoint_of_another_thread_count_is_not_resumed_and_says_so(caches, tmp_path):
    out = tmp_path / "run"
    train(caches, out, "--stop-after", "2")  # --threads 1
    done = train(caches, out, "--threads", "2")
    assert "removing the checkpoints" in done.stdout and "resuming" not in done.stdout
    assert "threads 1, now 2" in done.stdout
    assert torch.load(out / "ckpt" / "last.pt", weights_only=True)["params"]["threads"] == 2
