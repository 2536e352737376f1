"""Command-line tools that only move bytes (listing, packing, extraction, indexes, caches) do not
import torch, and their --help answers about as fast as Python starts.

Timing bound, chosen to hold on a loaded 2-core machine: the best of 2 runs of a light script's
`--help` within 5 x the best of 3 `python -c pass` plus 1 s. Importing torch alone takes
seconds, so a light script that started importing it would fail the bound as well as the
torch-blocked import.
"""
import time

import pytest

from e2e import ROOT, sh

LIGHT = [
    "extract_archive.py", "make_lst.py", "make_rec.py", "mnist_to_pngs.py", "rec_to_array.py",
    "reorg_dog_breed.py", "show_metrics.py", "sync_doors.py", "tiny_to_array.py", "write_cntk_maps.py",
    "unlock.py", "write_dvc_yaml.py", "write_ilsvrc_val_table.py", "write_tiny_index.py",
]
# training, evaluation, models, and the demo data generator (its digits are warped with torch)
HEAVY = [
    "convert_caffe_alexnet.py", "evaluate.py", "evaluate_crops.py", "extract_features.py",
    "make_demo.py", "model_classes.py", "predict.py", "train.py", "train_transfer_head.py",
]
# runs a script as __main__ with `import torch` (and any torch.* submodule) failing
WITHOUT_TORCH = ("import runpy, sys; sys.modules['torch'] = None; "
                 "sys.argv = [sys.argv[1], '--help']; runpy.run_path(sys.argv[0], run_name='__main__')")


def best_seconds(args, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        sh(args, ROOT)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.fixture(scope="module")
def python_start() -> float:
    return best_seconds(["python", "-c", "pass"], 3)


def test_every_script_is_classified():
    assert sorted(LIGHT + HEAVY) == sorted(p.name for p in (ROOT / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", LIGHT)
def test_light_script_help_without_torch_within_python_start_up(script, python_start):
    args = ["python", "-c", WITHOUT_TORCH, ROOT / "scripts" / script]
    assert sh(args, ROOT).stdout.startswith("usage:")
    seconds = best_seconds(args, 2)
    assert seconds <= 5 * python_start + 1.0, f"{script} --help took {seconds:.2f} s, python {python_start:.2f} s"
