"""Snakemake first (the session's `mnist_done` run), DVC after, on the mnist_lenet5 recipe alone:
record the run in DVC without rerunning, restore it in a fresh clone without retraining, and
check that a recipe's targets, code dependencies and raw paths touch only what they should.

The tests share one workspace and run in order.
"""
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from e2e import clone_workspace, sh

OUT = "results/mnist_lenet5"
pytestmark = pytest.mark.slow


def nothing_to_do(ws, *targets) -> bool:
    done = sh(["snakemake", "-n", *targets], ws)
    return "Nothing to be done" in done.stdout + done.stderr


@pytest.fixture(scope="module")
def ws(mnist_done, tmp_path_factory):
    """The session's finished MNIST run (one epoch: the doors are under test, not the accuracy),
    in this module's copy, with a folder remote."""
    ws = clone_workspace(mnist_done, tmp_path_factory.mktemp("doors") / "repo")
    sh(["dvc", "remote", "add", "-d", "local", str(ws.parent / "remote")], ws)
    return ws


def test_recipe_target_runs_only_its_recipe(ws):
    assert (ws / OUT / "metrics.json").exists() and (ws / OUT / "predictions.csv").exists()
    assert not (ws / "results/imagenet8_alexnet").exists()
    assert not (ws / "data/demo/dog_breed").exists()


def test_record_makes_dvc_agree_without_rerunning(ws):
    # a rerun would rewrite the job's log
    log_mtime = (ws / "logs/mnist_train.log").stat().st_mtime_ns
    model = (ws / OUT / "model.pt").stat()
    committed = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]  # the demo baseline
    assert "up to date" not in sh(["dvc", "status", "--with-deps", "mnist_lenet5"], ws).stdout
    recorded = sh(["python", "scripts/sync_doors.py", "record", "mnist_lenet5"], ws).stdout
    # the cache hardlinks (.dvc/config): the model Snakemake wrote is the cached copy, with its
    # time, and nothing is touched (a touch would make DVC read every output again)
    after = (ws / OUT / "model.pt").stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_nlink) == (model.st_ino, model.st_mtime_ns, 2)
    assert "--touch" not in recorded, recorded
    assert "up to date" in sh(["dvc", "status", "--with-deps", "mnist_lenet5"], ws).stdout
    repro = sh(["dvc", "repro", "mnist_lenet5"], ws).stdout
    assert "Running stage" not in repro, repro
    assert nothing_to_do(ws, "mnist_lenet5")
    assert (ws / "logs/mnist_train.log").stat().st_mtime_ns == log_mtime
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    assert {"mnist_train", "mnist_evaluate", "mnist_lenet5"} <= set(lock)
    others = {name: stage for name, stage in committed.items() if not name.startswith("mnist")}
    assert "imagenet8_train" in others and {name: lock[name] for name in others} == others


def test_record_touches_in_pipeline_order_where_the_cache_copies(mnist_done, tmp_path):
    """A cache on another file system (a shared one, say) cannot hardlink: DVC copies each
    output and links the copy back with a new time, in no order; record then touches every
    job's outputs, and both doors agree."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no /dev/shm on another file system than the tests' tmp tree")
    ws = clone_workspace(mnist_done, tmp_path / "repo")
    cache = Path(tempfile.mkdtemp(dir=shm, prefix="imgdag-test-cache-"))
    try:
        sh(["dvc", "cache", "dir", "--local", str(cache)], ws)
        recorded = sh(["python", "scripts/sync_doors.py", "record", "mnist_lenet5"], ws).stdout
        assert "--touch" in recorded and (ws / OUT / "model.pt").stat().st_nlink == 1, recorded
        assert nothing_to_do(ws, "mnist_lenet5")
        assert "up to date" in sh(["dvc", "status", "--with-deps", "mnist_lenet5"], ws).stdout
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def test_record_refuses_an_unfinished_run(ws):
    params = (ws / "params.yaml").read_text()
    (ws / "params.yaml").write_text(params.replace("latency_repeats: 3", "latency_repeats: 4"))
    done = sh(["python", "scripts/sync_doors.py", "record", "mnist_lenet5"], ws, check=False)
    (ws / "params.yaml").write_text(params)
    assert done.returncode == 1
    assert "snakemake --cores all mnist_lenet5" in done.stderr


def test_fresh_clone_after_dvc_pull_has_nothing_to_do(ws):
    sh(["dvc", "push", "mnist_lenet5", "--with-deps"], ws)
    sh(["git", "add", "-A"], ws)
    sh(["git", "commit", "-qm", "mnist run recorded"], ws)
    clone = ws.parent / "clone"
    sh(["git", "clone", "-q", str(ws), str(clone)], ws.parent)
    assert not (clone / ".snakemake").exists()
    sh(["python", "scripts/sync_doors.py", "checkout", "--pull", "mnist_lenet5"], clone)
    assert (clone / OUT / "model.pt").read_bytes() == (ws / OUT / "model.pt").read_bytes()
    assert nothing_to_do(clone, "mnist_lenet5")
    assert "up to date" in sh(["dvc", "status", "--with-deps", "mnist_lenet5"], clone).stdout


def dvc_changed(ws, *stages) -> dict:
    return json.loads(sh(["dvc", "status", "--json", "--with-deps", *stages], ws).stdout)


def planned_jobs(ws, *targets) -> set[str]:
    out = sh(["snakemake", "-n", *targets], ws).stdout
    return {line.split()[-1].rstrip(":") for line in out.splitlines()
            if line.startswith(("rule ", "localrule "))}


def test_a_fresh_clone_sees_a_params_change_in_both_doors(ws):
    clone = ws.parent / "clone"  # restored by `sync_doors.py checkout --pull` above
    # as if `dvc pull` had restored every file in an order Snakemake finds current: a fresh
    # clone's Snakemake then has no job to touch, and without a record of a job's params it
    # cannot see them change
    shutil.rmtree(clone / ".snakemake/metadata")
    now = time.time()
    for path in [*(clone / "data").rglob("*"), *(clone / "results").rglob("*")]:
        os.utime(path, (now, now))
    assert nothing_to_do(clone, "mnist_lenet5")
    sh(["python", "scripts/sync_doors.py", "checkout", "mnist_lenet5"], clone)
    params = (clone / "params.yaml").read_text()
    (clone / "params.yaml").write_text(params.replace("latency_repeats: 3", "latency_repeats: 4"))
    try:
        assert planned_jobs(clone, "mnist_lenet5") == {"mnist_evaluate", "mnist_lenet5"}
        assert set(dvc_changed(clone, "mnist_lenet5")) == {"mnist_evaluate"}
    finally:
        (clone / "params.yaml").write_text(params)


def test_an_older_commit_is_one_command_away_in_both_doors(ws):
    clone = ws.parent / "clone"
    params = (clone / "params.yaml").read_text()
    (clone / "params.yaml").write_text(params.replace("latency_repeats: 3", "latency_repeats: 4"))
    sh(["snakemake", "--cores", "2", "mnist_lenet5"], clone)  # reruns the evaluation only
    sh(["python", "scripts/sync_doors.py", "record", "mnist_lenet5"], clone)
    sh(["git", "commit", "-qam", "four latency repeats"], clone)
    sh(["git", "checkout", "-q", "HEAD~1"], clone)
    # Snakemake remembers the params of its last run (4), the commit says 3: the README's command
    assert "mnist_evaluate" in planned_jobs(clone, "mnist_lenet5")
    sh(["python", "scripts/sync_doors.py", "checkout", "mnist_lenet5"], clone)
    assert nothing_to_do(clone, "mnist_lenet5") and dvc_changed(clone, "mnist_lenet5") == {}
    assert (clone / "params.yaml").read_text() == params


@pytest.mark.parametrize("door", ["snakemake", "dvc"])
def test_a_deleted_plot_and_log_are_rebuilt_by_either_door(ws, door):
    clone = ws.parent / "clone"
    names = ["curves.png", "train_log.csv"]
    kept = {name: (clone / OUT / name).read_bytes() for name in names}
    for name in names:
        (clone / OUT / name).unlink()
    assert "mnist_train" in planned_jobs(clone, "mnist_lenet5")
    assert "mnist_train" in dvc_changed(clone, "mnist_lenet5")
    if door == "snakemake":
        sh(["snakemake", "--cores", "2", "mnist_lenet5"], clone)
    else:
        sh(["dvc", "repro", "mnist_lenet5"], clone)
    assert {name: (clone / OUT / name).read_bytes() for name in names} == kept  # the same run again
    assert nothing_to_do(clone, "mnist_lenet5") and dvc_changed(clone, "mnist_lenet5") == {}


def test_a_module_mnist_does_not_import_plans_nothing(ws):
    dog = ws / "imgdag/demo/dog_breed.py"
    dog.write_text(dog.read_text() + "\n# a comment\n")
    try:
        assert nothing_to_do(ws, "mnist_lenet5")
        assert "up to date" in sh(["dvc", "status", "--with-deps", "mnist_lenet5"], ws).stdout
    finally:
        sh(["git", "checkout", "imgdag/demo/dog_breed.py"], ws)
    # the module MNIST's demo does import: its demo reruns, in both doors
    mnist = ws / "imgdag/demo/mnist.py"
    mnist.write_text(mnist.read_text() + "\n# a comment\n")
    try:
        assert "demo_mnist" in sh(["snakemake", "-n", "mnist_lenet5"], ws).stdout
        assert "demo_mnist" in sh(["dvc", "status", "--with-deps", "mnist_lenet5"], ws).stdout
    finally:
        sh(["git", "checkout", "imgdag/demo/mnist.py"], ws)


EXP_SHOW = ["dvc", "exp", "show", "--only-changed", "--no-pager", "--drop", "Created|[^:]*/[^:]*$"]


def test_exp_run_of_one_recipe_and_a_table_that_fits(ws):
    exp = sh(["dvc", "exp", "run", "mnist_lenet5", "-S", "recipes.mnist_lenet5.train.epochs=2"],
             ws).stdout
    ran = [line.split("'")[1] for line in exp.splitlines() if line.startswith("Running stage")]
    assert "mnist_train" in ran and all(s.startswith("mnist_") for s in ran), ran
    table = sh(EXP_SHOW, ws, env={"COLUMNS": "400"}).stdout
    assert "recipes.mnist_lenet5.train.epochs" in table and "test_accuracy" in table, table
    assert "…" not in table, table  # nothing cut off
    assert max(map(len, table.splitlines())) <= 120, table


def test_a_new_raw_path_reaches_dvc_without_regenerating(ws):
    moved = ws / "raw/mnist"
    moved.parent.mkdir()
    sh(["cp", "-r", "data/demo/mnist", str(moved)], ws)
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["datasets"]["mnist"]["raw_dir"] = "raw/mnist"
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["python", "scripts/write_dvc_yaml.py", "--check"], ws)  # dvc.yaml needs no rewrite
    status = sh(["dvc", "status", "mnist_pngs-train"], ws).stdout
    assert "raw/mnist/train-images-idx3-ubyte.gz" in status, status
    repro = sh(["dvc", "repro", "mnist_lenet5"], ws).stdout
    # the PNG stages rerun from the new path; their outputs are the same bytes, so nothing after
    assert "Running stage 'mnist_pngs-train'" in repro and "Running stage 'mnist_train'" not in repro, repro
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]["mnist_pngs-train"]
    assert any(dep["path"].startswith("raw/mnist/") for dep in lock["deps"])
    assert nothing_to_do(ws, "mnist_lenet5")
    assert json.loads((ws / OUT / "metrics.json").read_text())


def test_the_report_holds_the_recipes_figures(ws, tmp_path):
    sh(["snakemake", "--report", str(tmp_path / "report.html"), "mnist_lenet5"], ws)
    html = (tmp_path / "report.html").read_text()
    # each item's caption (report/*.rst): the file names alone are also in the rules' code
    for caption in ["headline figures", "Training curves", "Confusion matrix", "Accuracy of each class"]:
        assert caption in html, caption
