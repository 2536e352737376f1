"""The real MNIST digits through the recipe: train on the first 8,000 of t10k, test on the rest.

../shared/realdata/mnist has the official test set only (no train images), so the test
builds a raw folder in the real layout from it and points the pipeline there.
"""
import csv
import json
import os
import shutil

import pytest
import yaml

from conftest import realdata_path
from e2e import copy_repo, sh
from imgdag.errors import DataError
from imgdag.layouts.mnist_idx import read_split, write_idx

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_missing_train_images_are_named(tmp_path):
    raw = realdata_path("mnist")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: file not found"):
        read_split(raw, "train")


def test_real_digits_reach_high_accuracy(tmp_path):
    images, labels = read_split(realdata_path("mnist"), "test")
    raw = tmp_path / "raw"
    write_idx(raw / "train-images-idx3-ubyte.gz", images[:8000])
    write_idx(raw / "train-labels-idx1-ubyte.gz", labels[:8000])
    write_idx(raw / "t10k-images-idx3-ubyte.gz", images[8000:])
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", labels[8000:])
    ws = copy_repo(tmp_path / "ws")
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["datasets"]["mnist"]["raw_dir"] = str(raw)
    (ws / "real.yaml").write_text(yaml.safe_dump(params))  # --configfile replaces sections
    sh(["snakemake", "results/mnist_lenet5/metrics.json", "--cores", "2",
        "--configfile", "real.yaml"], ws, timeout=1200)
    metrics = json.loads((ws / "results/mnist_lenet5/metrics.json").read_text())
    with open(ws / "results/mnist_lenet5/train_times.csv") as f:
        seconds = sum(float(row["seconds"]) for row in csv.DictReader(f))
    print(f"real MNIST (8,000 train / 2,000 test) test accuracy: {metrics['test_accuracy']}, "
          f"training {seconds:.0f} s (load average {os.getloadavg()[0]:.1f})")
    assert metrics["test_images"] == 2000
    assert metrics["test_accuracy"] >= 0.990
    assert not (ws / "data/demo/mnist").exists()  # the demo was not used
    shutil.rmtree(ws / "data")
