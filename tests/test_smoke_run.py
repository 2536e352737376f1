"""A smoke run (`snakemake <recipe> --config subset=N`, imgdag/smoke.py): the recipe end to end on
the first N images of each class, in smoke/subset-N, the full run's files untouched."""
import csv
import json
from collections import Counter

import pytest

from conftest import file_stamps
from e2e import clone_workspace, copy_repo, sh
from imgdag.layouts.records import UNLABELLED, ImageRecord, LayoutReading, Split, first_per_class


def test_first_per_class_keeps_the_first_n_of_each_label_and_n_x_classes_test_images():
    labels = [1, 0, 1, 1, 0, UNLABELLED, 2, UNLABELLED, UNLABELLED, 0]
    assert first_per_class(labels, 2, classes=1) == [0, 1, 2, 4, 5, 6, 7]


def test_a_reading_keeps_the_first_n_by_path_in_its_own_order_and_counts_the_rest():
    records = [ImageRecord(path, label, "") for path, label in
               [("b/3.jpg", 1), ("a/2.jpg", 0), ("b/1.jpg", 1), ("a/1.jpg", 0), ("b/2.jpg", 1)]]
    reading = LayoutReading(["a", "b"], {"train": Split(None, records)})
    reading.keep_first(None)
    assert len(reading.records("train")) == 5
    reading.keep_first(1)
    assert [r.path for r in reading.records("train")] == ["b/1.jpg", "a/1.jpg"]
    assert reading.skipped_text() == "3 train: left out of the smoke run's subset (the first 1 per class)"


def lst_rows(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


@pytest.mark.slow
@pytest.mark.timeout(900)  # the session's MNIST run (mnist_done) may be made first; this test: ~50 s
def test_a_smoke_run_takes_n_per_class_and_leaves_the_full_run_alone(mnist_done, tmp_path):
    ws = clone_workspace(mnist_done, tmp_path / "repo")
    full_run = {p: s for p, s in file_stamps(ws).items() if p.startswith(("data/", "results/"))}
    sh(["snakemake", "--cores", "2", "mnist_lenet5", "--config", "subset=2"], ws, timeout=300)
    # the full run's files as they were, and still current
    assert {p: s for p, s in file_stamps(ws).items() if p.startswith(("data/", "results/"))} == full_run
    assert "Nothing to be done" in sh(["snakemake", "-n", "mnist_lenet5"], ws).stdout

    smoke = ws / "smoke/subset-2"
    for split in ("train", "test"):
        rows = lst_rows(smoke / f"data/mnist/{split}.lst")
        assert Counter(float(r[1]) for r in rows) == {d: 2 for d in range(10)}, rows
        # the first two of each digit in the full run's listing, the same images
        first, taken = [], Counter()
        for r in lst_rows(ws / f"data/mnist/{split}.lst"):
            if taken[r[1]] < 2:
                taken[r[1]] += 1
                first.append(r[2])
        assert [(smoke / "data/mnist/images" / r[2]).read_bytes() for r in rows] == \
            [(ws / "data/mnist/images" / name).read_bytes() for name in first]
    assert json.loads((smoke / "results/mnist_lenet5/metrics.json").read_text())["test_images"] == 20

@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("smoke"))


@pytest.mark.slow  # each case parses the Snakefile (seconds)
@pytest.mark.parametrize("value", ["0", "two"])
def test_a_subset_that_is_not_a_positive_whole_number_is_one_line(ws, value):
    done = sh(["snakemake", "-n", "mnist_lenet5", "--config", f"subset={value}"], ws, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 1
    assert f"subset: {value if value == '0' else repr(value)} is not a positive whole number" in out, out
    assert not (ws / "smoke").exists()
