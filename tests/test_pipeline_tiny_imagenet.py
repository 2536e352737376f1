"""tiny_imagenet_resnet18 end to end with Snakemake on the demo data, in a copy of the session's
finished demo (`demo_done`)."""
import csv
import json

import numpy as np
import pytest
import yaml

from e2e import clone_workspace, sh

OUT = "results/tiny_imagenet_resnet18"
TARGETS = [f"{OUT}/metrics.json", f"{OUT}/predictions.csv"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(demo_done, tmp_path_factory):
    """A copy of the session's finished demo (every recipe run by Snakemake)."""
    return clone_workspace(demo_done, tmp_path_factory.mktemp("tiny") / "repo")


def test_snakemake_ran_the_recipe(ws):
    images = np.load(ws / "data/tiny_imagenet/cache/train.images.npy", mmap_mode="r")
    labels = np.load(ws / "data/tiny_imagenet/cache/train.labels.npy")
    assert images.shape == (300, 64, 64, 3) and images.dtype == np.uint8
    assert sorted(set(labels.tolist())) == list(range(10))
    classes = (ws / "data/tiny_imagenet/index/classes.txt").read_text().split()
    metrics = json.loads((ws / OUT / "metrics.json").read_text())
    assert metrics["val_images"] == 50  # the labelled val/ images
    assert metrics["val_accuracy"] > 0.3  # chance is 0.1
    assert metrics["val_top5"] >= metrics["val_accuracy"]
    assert set(json.loads((ws / OUT / "per_class_accuracy.json").read_text())) <= set(classes)
    params = yaml.safe_load((ws / "params.yaml").read_text())["recipes"]
    with open(ws / OUT / "train_log.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == list(range(1, params["tiny_imagenet_resnet18"]["train"]["epochs"] + 1))
    with open(ws / OUT / "predictions.csv") as f:
        predictions = list(csv.DictReader(f))
    with open(ws / "data/tiny_imagenet/index/test.csv") as f:
        test_files = [row["file"] for row in csv.DictReader(f)]
    assert [row["file"] for row in predictions] == test_files and len(test_files) == 20
    assert {row["label"] for row in predictions} <= set(classes)  # WNIDs, not indices
    assert (ws / OUT / "curves.png").stat().st_size > 0
    assert "Nothing to be done" in sh(["snakemake", "-n", *TARGETS], ws).stdout
