"""dog_breed_transfer end to end on the demo data, in a copy of the session's finished demo
(`demo_done`): the Snakemake run and its submission, then a head-only params change that Snakemake and DVC both confine to the
head (features are not recomputed). The tests share one workspace and run in order."""
import csv
import json
import zipfile
from pathlib import PurePosixPath

import numpy as np
import pytest
import yaml

from e2e import clone_workspace, sh

OUT = "results/dog_breed_transfer"
TARGETS = [f"{OUT}/metrics.json", f"{OUT}/submission.csv"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(demo_done, tmp_path_factory):
    """A copy of the session's finished demo (every recipe run by Snakemake)."""
    return clone_workspace(demo_done, tmp_path_factory.mktemp("dog") / "repo")


def recipe(ws) -> dict:
    return yaml.safe_load((ws / "params.yaml").read_text())["recipes"]["dog_breed_transfer"]


def feature_sets(ws) -> list[str]:
    return [f"{b['name']}-{b['size']}px" for b in recipe(ws)["backbones"]]


def read_metrics(ws) -> dict:
    return json.loads((ws / OUT / "metrics.json").read_text())


def test_snakemake_ran_the_recipe(ws):
    classes = (ws / "data/dog_breed/lists/classes.txt").read_text().split()
    metrics = read_metrics(ws)
    assert metrics["val_accuracy"] > 0.4  # chance is 1/6
    assert metrics["val_log_loss"] < np.log(len(classes))  # better than uniform
    assert len(metrics) <= 8  # the headline; the rest in run_info.json
    info = json.loads((ws / OUT / "run_info.json").read_text())
    assert list(info["backbones"]) == feature_sets(ws)
    assert all(b["pretrained"] is False for b in info["backbones"].values())  # no weights here
    assert info["feature_dims"] == sum(b["features"] for b in info["backbones"].values())
    for name in feature_sets(ws):
        assert "NO WEIGHT FILE" in (ws / f"logs/dog_features_{name}.log").read_text()
    with open(ws / "data/demo/dog_breed/sample_submission.csv") as f:
        sample_header = next(csv.reader(f))
    with open(ws / OUT / "submission.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == sample_header and sorted(rows[0][1:]) == sorted(classes)
    with zipfile.ZipFile(ws / "data/demo/dog_breed/test.zip") as z:
        test_ids = sorted(PurePosixPath(n).stem for n in z.namelist() if n.endswith(".jpg"))
    assert [row[0] for row in rows[1:]] == test_ids
    probs = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    assert (probs >= 0).all() and np.abs(probs.sum(1) - 1).max() < 1e-6
    with open(ws / OUT / "train_log.csv") as f:
        assert len(list(csv.DictReader(f))) == recipe(ws)["head"]["epochs"]
    assert "Nothing to be done" in sh(["snakemake", "-n", *TARGETS], ws).stdout


def test_head_params_change_reruns_only_the_head(ws):
    stages = ["dog_reorg", *[f"dog_features-{name}" for name in feature_sets(ws)], "dog_head"]
    sh(["dvc", "commit", "-f", "--with-deps", "dog_head"], ws)  # lock what Snakemake made
    assert json.loads(sh(["dvc", "status", "--json", *stages], ws).stdout) == {}
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["recipes"]["dog_breed_transfer"]["head"]["lr"] *= 3
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    dry = sh(["snakemake", "-n", *TARGETS], ws).stdout
    assert "dog_head" in dry and "dog_features" not in dry and "dog_reorg" not in dry
    status = json.loads(sh(["dvc", "status", "--json", *stages], ws).stdout)
    assert list(status) == ["dog_head"]
    assert "recipes.dog_breed_transfer.head" in json.dumps(status["dog_head"])

    features = sorted((ws / "data/dog_breed/features").rglob("*.pt"))
    mtimes = {f: f.stat().st_mtime_ns for f in features}
    before = read_metrics(ws)
    sh(["snakemake", "--cores", "2", "dog_breed_transfer"], ws)  # the recipe: raw paths checked too
    assert sorted((ws / "data/dog_breed/features").rglob("*.pt")) == features
    assert {f: f.stat().st_mtime_ns for f in features} == mtimes
    assert read_metrics(ws)["val_log_loss"] != before["val_log_loss"]
    assert "Nothing to be done" in sh(["snakemake", "-n", *TARGETS], ws).stdout
