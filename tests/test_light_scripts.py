"""Command-line tools that only move bytes (listing, packing, extraction, indexes, caches) do not
import torch, and their --help answers about as fast as Python starts.

What a light script's `--help` imports is checked by name: with torch blocked, the third-party
packages it loads must be among LIGHT_PACKAGES (no scipy, matplotlib, pandas, snakemake, dvc...).
That holds whatever the machine's load. The wall time is checked too, with a bound loose enough
for a loaded 2-core machine (best of 2 within 10 x the best of 3 `python -c pass`, plus 3 s):
it catches a script that does seconds of work before parsing its arguments.
"""
import time

import pytest

from e2e import ROOT, sh

LIGHT = [
    "brief_log.py", "extract_archive.py", "make_lst.py", "make_rec.py", "mnist_to_pngs.py", "rec_to_array.py",
    "reorg_dog_breed.py", "show_metrics.py", "sync_doors.py", "tiny_to_array.py", "write_cntk_maps.py",
    "unlock.py", "write_dvc_yaml.py", "write_ilsvrc_val_table.py", "write_raw_state.py", "write_tiny_index.py",
]
# training, evaluation, models, and the demo data generator (its digits are warped with torch)
HEAVY = [
    "convert_caffe_alexnet.py", "evaluate.py", "evaluate_crops.py", "extract_features.py",
    "make_demo.py", "model_classes.py", "predict.py", "train.py", "train_transfer_head.py",
]
# what a script that moves bytes may load: image codecs, arrays, YAML, progress bars, the
# logger-plugin interface dvcgen subclasses (not snakemake itself), psutil (unlock.py finds live
# runs; imgdag.faults, which every script loads, watches the Snakemake above the job)
LIGHT_PACKAGES = {"imgdag", "PIL", "cv2", "simplejpeg", "cython_runtime", "numpy", "yaml", "tqdm",
                  "snakemake_interface_common", "snakemake_interface_logger_plugins", "psutil"}
# runs a script as __main__ with `import torch` (and any torch.* submodule) failing; at exit,
# prints on stderr the last line: the third-party top-level packages it imported
WITHOUT_TORCH = """import runpy, sys
sys.modules['torch'] = None
sys.argv = [sys.argv[1], '--help']
try:
    runpy.run_path(sys.argv[0], run_name='__main__')
finally:
    print(*sorted({name.split('.')[0] for name, module in sys.modules.items() if module is not None}
                  - set(sys.stdlib_module_names)), file=sys.stderr)
"""


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
    done = sh(args, ROOT)
    assert done.stdout.startswith("usage:")
    imported = {name for name in done.stderr.splitlines()[-1].split() if not name.startswith("_")}
    assert imported <= LIGHT_PACKAGES, f"{script} --help imports {sorted(imported - LIGHT_PACKAGES)}"
    seconds = best_seconds(args, 2)
    assert seconds <= 10 * python_start + 3.0, f"{script} --help took {seconds:.2f} s, python {python_start:.2f} s"
