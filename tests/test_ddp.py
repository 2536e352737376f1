"""scripts/train.py under torchrun (2 CPU processes, gloo) against one process: resume on
every rank, same weights and logged metrics, files from rank 0 only; and the batch sharding."""
import csv
import json
import os
import shutil
import subprocess
import sys
from functools import partial

import numpy as np
import pytest
import torch
from conftest import ROOT

from imgdag.arraycache import cache_paths
from imgdag.augment import random_crop_rotate
from imgdag.batches import ArrayBatches

PARAMS = {"model": "lenet5", "num_classes": 10, "epochs": 2, "batch_size": 32, "optimizer": "sgd",
          "lr": 0.05, "momentum": 0.0, "weight_decay": 0.0, "lr_schedule": "none", "seed": 0,
          "checkpoint_every": 1, "device": "cpu", "compile": False,
          "normalize": {"mean": [0.5], "std": [0.25]}}


def write_cache(stem, n: int, seed: int) -> None:
    """A synthetic MNIST-sized cache whose label is the brightness decile (learnable)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    images = (images * rng.uniform(0.1, 1.0, (n, 1, 1, 1))).astype(np.uint8)
    images_path, labels_path = cache_paths(stem)
    np.save(images_path, images)
    np.save(labels_path, np.minimum(images.mean(axis=(1, 2, 3)) / 12.8, 9).astype(np.int64))


def train(tmp_path, name: str, processes: int, *extra) -> str:
    """Run scripts/train.py (through tests/ddp_probe.py under torchrun); its stdout."""
    out = tmp_path / name
    if processes == 1:
        launch = [sys.executable, str(ROOT / "scripts" / "train.py")]
    else:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                  f"--nproc_per_node={processes}", str(ROOT / "tests" / "ddp_probe.py")]
    args = ["--train-cache", tmp_path / "train", "--val-cache", tmp_path / "val",
            "--params", json.dumps(PARAMS), "--model-out", out / "model.pt",
            "--log-csv", out / "log.csv", "--curves-png", out / "curves.png",
            "--checkpoint-dir", out / "checkpoints", "--threads", "1", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROBE_OUT": str(out)}
    done = subprocess.run([*launch, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def weights(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def log_rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def writes(tmp_path, rank: int) -> set[str]:
    return set(json.loads((tmp_path / f"writes.{rank}.json").read_text()))


@pytest.mark.slow
def test_ddp_two_processes_match_one(tmp_path):
    write_cache(tmp_path / "train", 256, seed=0)  # 256 = 8 global batches of 32
    write_cache(tmp_path / "val", 64, seed=1)
    train(tmp_path, "one", 1)
    one, ddp = tmp_path / "one", tmp_path / "ddp"
    moved = max_diff(weights(one / "checkpoints/epoch_001.pt"), weights(one / "model.pt"))
    assert moved > 1e-3  # an epoch moves the weights far beyond the tolerance below
    # both ranks resume from one process's epoch 1 and train epoch 2 under DDP
    (ddp / "checkpoints").mkdir(parents=True)
    shutil.copy(one / "checkpoints/epoch_001.pt", ddp / "checkpoints/last.pt")
    stdout = train(tmp_path, "ddp", 2)
    assert stdout.count("resuming from") == 2
    diff = max_diff(weights(one / "model.pt"), weights(ddp / "model.pt"))
    print(f"max abs weight difference after an epoch, 2 processes vs 1: {diff:.2e}")
    assert diff < 1e-5
    assert {"model.pt", "log.csv", "curves.png", "checkpoints/epoch_002.pt",
            "checkpoints/last.pt"} <= writes(tmp_path, 0)
    assert writes(tmp_path, 1) == set()
    # the logged metrics are over both ranks' samples, as one process logs them
    rows_one, rows_ddp = log_rows(one / "log.csv"), log_rows(ddp / "log.csv")
    assert [row["epoch"] for row in rows_ddp] == ["1", "2"]
    for key in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5"):
        assert abs(float(rows_one[1][key]) - float(rows_ddp[1][key])) < 1e-4, key


def test_shards_partition_each_batch_with_one_process_augmentation():
    images = np.arange(10 * 28 * 28, dtype=np.int64).reshape(10, 28, 28, 1).astype(np.uint8)
    labels = np.arange(10)
    augment = partial(random_crop_rotate, crop_min=20, crop_max=28, max_degrees=30.0)
    kw = dict(device=torch.device("cpu"), mean=[0.0], std=[1 / 255], shuffle=True, seed=4,
              augment=augment)
    one = ArrayBatches(images, labels, 4, **kw)
    ranks = [ArrayBatches(images, labels, 4, rank=r, world_size=2, **kw) for r in (0, 1)]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 3
    for (x, y), *shards in zip(one.epoch(2), ranks[0].epoch(2), ranks[1].epoch(2), strict=True):
        # rank r holds rows r, r + 2, ... of the one-process batch, augmented the same way
        for rank, (xr, yr) in enumerate(shards):
            assert torch.equal(yr, y[rank::2])
            assert torch.allclose(xr, x[rank::2], atol=1e-4)
    # over 4 ranks 10 samples are padded to 12 (equal steps), or split exactly without pad
    for pad, sizes, count in ((True, [3, 3, 3, 3], 12), (False, [3, 3, 2, 2], 10)):
        shards = [ArrayBatches(images, labels, 4, rank=r, world_size=4, pad=pad, **kw)
                  for r in range(4)]
        seen = [torch.cat([y for _, y in shard.epoch(0)]) for shard in shards]
        assert [len(s) for s in seen] == sizes and len(torch.cat(seen)) == count
        assert set(torch.cat(seen).tolist()) == set(range(10))
    with pytest.raises(ValueError, match="does not split evenly"):
        ArrayBatches(images, labels, 6, rank=0, world_size=4, **kw)
