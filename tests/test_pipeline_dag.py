"""The whole demo DAG end to end through both doors, with the mnist_lenet5 recipe's outputs
checked in detail (the other recipes have their own tests).

The tests share one workspace and run in order: Snakemake first, then DVC on the same files.
It starts as a copy of the session's finished demo (`demo_done`: Snakemake's whole DAG at the
repository's params, so that the results can match the committed dvc.lock).
"""
import csv
import json
import os
import time

import pytest
import yaml

from e2e import clone_workspace, sh

OUT = "results/mnist_lenet5"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(demo_done, tmp_path_factory):
    return clone_workspace(demo_done, tmp_path_factory.mktemp("dag") / "repo")


def read_metrics(ws):
    return json.loads((ws / OUT / "metrics.json").read_text())


def test_snakemake_ran_the_whole_demo(ws):
    for path in ["data/demo/mnist/train-images-idx3-ubyte.gz", "data/mnist/train.lst",
                 "data/mnist/train.rec", "data/mnist/train.idx", "data/mnist/test.rec",
                 "data/mnist/cache/train.images.npy", f"{OUT}/model.pt", f"{OUT}/curves.png",
                 f"{OUT}/confusion.csv", f"{OUT}/predictions.csv"]:
        assert (ws / path).stat().st_size > 0, path
    metrics = read_metrics(ws)
    assert metrics["test_accuracy"] > 0.8  # chance is 0.1
    assert len(metrics) <= 8  # headline figures only; the details have their own files
    assert len(json.loads((ws / OUT / "per_class_accuracy.json").read_text())) == 10
    latency = json.loads((ws / OUT / "latency.json").read_text())
    assert latency["ms_per_batch_64"] > 0 and latency["device"]
    with open(ws / OUT / "classified.csv") as f:
        pairs = list(csv.DictReader(f))
    assert len(pairs) == metrics["test_images"] and set(pairs[0]) == {"actual", "predicted"}
    epochs = yaml.safe_load((ws / "params.yaml").read_text())["recipes"]["mnist_lenet5"][
        "train"]["epochs"]
    with open(ws / OUT / "train_log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == list(range(1, epochs + 1))
    with open(ws / OUT / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == metrics["test_images"]
    # files are named NNNNNN_<label>.png: predictions mostly agree with them
    agree = sum(r["file"].split("_")[1].split(".")[0] == r["label"] for r in rows)
    assert agree / len(rows) > 0.8
    assert (ws / OUT / "checkpoints" / "last.pt").exists()
    assert "Nothing to be done" in sh(["snakemake", "--cores", "2"], ws).stdout + \
        sh(["snakemake", "-n"], ws).stdout


def test_wrong_params_give_a_readable_error(ws):
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["recipes"]["mnist_lenet5"]["train"]["epoch"] = 3  # typo of epochs
    params["recipes"]["mnist_lenet5"]["train"]["lr"] = "fast"
    (ws / "bad.yaml").write_text(yaml.safe_dump(params))
    done = sh(["snakemake", "-n", "--configfile", "bad.yaml"], ws, check=False)
    assert done.returncode != 0
    assert "unknown key 'epoch' (did you mean 'epochs'?)" in done.stderr + done.stdout
    (ws / "bad.yaml").unlink()


def recorded_outputs(lock_text: str) -> dict:
    """{stage: {output path: md5}} of a dvc.lock's text."""
    stages = yaml.safe_load(lock_text)["stages"]
    return {name: {out["path"]: out.get("md5") for out in stage.get("outs", [])}
            for name, stage in stages.items()}


def test_dvc_records_the_snakemake_run_as_the_committed_baseline(ws):
    """Snakemake's whole demo, recorded (`sync_doors.py record`: DVC hashes and caches, runs
    nothing), has every output of the committed dvc.lock byte for byte; then neither door has
    anything to do."""
    sh(["python", "scripts/sync_doors.py", "record"], ws)
    committed = recorded_outputs(sh(["git", "show", "HEAD:dvc.lock"], ws).stdout)
    assert recorded_outputs((ws / "dvc.lock").read_text()) == committed
    assert sum(len(outs) for outs in committed.values()) > 60
    assert "up to date" in sh(["dvc", "repro"], ws).stdout
    assert "Nothing to be done" in sh(["snakemake", "-n"], ws).stdout
    sh(["git", "add", "-A"], ws)
    sh(["git", "commit", "-qm", "demo run"], ws)
    tracked = sh(["git", "ls-files", OUT], ws).stdout.split()
    # metrics and plots are cache: false: in git, not in DVC's cache
    assert sorted(tracked) == [f"{OUT}/classified.csv", f"{OUT}/metrics.json",
                               f"{OUT}/train_log.csv"]


def test_snakemake_has_nothing_to_do_after_dvc_checkout_and_sync(ws):
    restored = ["data/mnist/cache/train.images.npy", "data/mnist/train.rec",
                "data/mnist/train.lst", "data/demo/mnist/train-images-idx3-ubyte.gz"]
    for name in restored:
        (ws / name).unlink()
    sh(["dvc", "checkout"], ws)
    # DVC gives restored files new modification times where it copies them (a pull, or a cache
    # that cannot be linked), upstream ones after downstream ones: the trap, restored inputs
    # newer than the model trained from them. Data files are too large for Snakemake's checksums.
    now = time.time()
    for name in restored:
        os.utime(ws / name, (now, now))
    assert (ws / "data/mnist/train.rec").stat().st_mtime_ns > \
        (ws / f"{OUT}/model.pt").stat().st_mtime_ns
    sh(["python", "scripts/sync_doors.py", "checkout"], ws)
    assert "Nothing to be done" in sh(["snakemake", "-n"], ws).stdout
    assert "up to date" in sh(["dvc", "status"], ws).stdout


def test_exp_run_reruns_only_training_and_diffs_show_it(ws):
    first_png = min((ws / "data/mnist/images/train").glob("*.png"))
    # upstream of MNIST training, and another recipe's model: none may be rebuilt
    untouched = {p: (ws / p).stat().st_mtime_ns for p in
                 ["data/mnist/train.rec", "data/mnist/cache/train.images.npy", first_png,
                  "results/imagenet8_alexnet/model.pt"]}
    before = read_metrics(ws)
    sh(["dvc", "exp", "run", "-S", "recipes.mnist_lenet5.train.epochs=2",
        "-S", "recipes.mnist_lenet5.train.lr=0.04"], ws)
    with open(ws / OUT / "train_log.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
    for path, mtime in untouched.items():
        assert (ws / path).stat().st_mtime_ns == mtime, path
    params_diff = sh(["dvc", "params", "diff"], ws).stdout
    assert "recipes.mnist_lenet5.train.epochs" in params_diff
    assert "recipes.mnist_lenet5.train.lr" in params_diff and "0.04" in params_diff
    metrics_diff = sh(["dvc", "metrics", "diff"], ws).stdout
    assert "test_accuracy" in metrics_diff
    assert read_metrics(ws)["test_loss"] != before["test_loss"]
    assert "Nothing to be done" in sh(["snakemake", "-n"], ws).stdout
