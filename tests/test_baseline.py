"""A committed baseline (dvc.lock, metrics and plot data, as `make baseline` prints them) gives
a fresh clone something to compare with: after the demo run, `dvc metrics diff` shows each
headline figure at HEAD and in the workspace. On the mnist_lenet5 recipe (one epoch), in a copy
of the repository."""
import json
import sys

import pytest
import yaml

from e2e import ROOT, copy_repo, sh

OUT = "results/mnist_lenet5"
pytestmark = pytest.mark.slow


def kept_in_git(ws) -> list[str]:
    sys.path.insert(0, str(ROOT / "scripts"))
    from sync_doors import git_kept_outputs

    return [path for path in git_kept_outputs(ws / "dvc.yaml") if path.startswith(OUT + "/")]


def test_a_fresh_clone_compares_the_demo_run_with_the_committed_baseline(tmp_path):
    origin = copy_repo(tmp_path / "origin")
    params = yaml.safe_load((origin / "params.yaml").read_text())
    params["recipes"]["mnist_lenet5"]["train"]["epochs"] = 1
    params["recipes"]["mnist_lenet5"]["evaluate"]["latency_repeats"] = 3
    (origin / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["dvc", "repro", "mnist_lenet5"], origin)  # what `make baseline` runs, for one recipe
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
