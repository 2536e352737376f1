"""A committed baseline (dvc.lock, metrics and plot data, as `make baseline` prints them) gives
a fresh clone something to compare with: after the demo run, `dvc metrics diff` shows each
headline figure at HEAD and in the workspace. On the mnist_lenet5 recipe (one epoch): the origin
is a copy of the session's finished run (`mnist_done`), the clone runs the recipe itself."""
import json
import sys

import pytest

from e2e import ROOT, clone_workspace, sh

OUT = "results/mnist_lenet5"
pytestmark = pytest.mark.slow


def kept_in_git(ws) -> list[str]:
    sys.path.insert(0, str(ROOT / "scripts"))
    from sync_doors import git_kept_outputs

    return [path for path in git_kept_outputs(ws / "dvc.yaml") if path.startswith(OUT + "/")]


def test_a_fresh_clone_compares_the_demo_run_with_the_committed_baseline(mnist_done, tmp_path):
    origin = clone_workspace(mnist_done, tmp_path / "origin")
    sh(["python", "scripts/sync_doors.py", "record", "mnist_lenet5"], origin)  # the run, into dvc.lock
    repro = sh(["dvc", "repro", "mnist_lenet5"], origin).stdout  # what `make baseline` runs, for one recipe
    assert "Running stage" not in repro, repro
    files = kept_in_git(origin)
    assert f"{OUT}/metrics.json" in files and f"{OUT}/train_log.csv" in files
    sh(["git", "add", "dvc.lock", "params.yaml", *files], origin)
    sh(["git", "commit", "-qm", "baseline"], origin)
    baseline = json.loads((origin / OUT / "metrics.json").read_text())

    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
    assert not (clone / "data").exists() and not (clone / OUT / "model.pt").exists()
    # the committed metrics are outputs like any other: the demo run makes them anew
    planned = sh(["snakemake", "-n", "mnist_lenet5"], clone).stdout
    assert "mnist_evaluate" in planned and "mnist_train" in planned, planned
    sh(["snakemake", "--cores", "2", "mnist_lenet5"], clone)
    assert "Nothing to be done" in sh(["snakemake", "-n", "mnist_lenet5"], clone).stdout

    diff = json.loads(sh(["dvc", "metrics", "diff", "--all", "--json"], clone).stdout)
    figures = diff[f"{OUT}/metrics.json"]
    assert set(figures) == set(baseline), figures  # the headline, no more
    for key, values in figures.items():
        assert values["old"] == baseline[key], (key, values)  # HEAD: the committed baseline
        assert values["new"] is not None, (key, values)  # the workspace: this run
    table = sh(["dvc", "metrics", "diff", "--all"], clone).stdout
    assert "test_accuracy" in table and "HEAD" in table and "workspace" in table, table
