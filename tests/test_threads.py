"""Threads a rule gives a script: idle OpenMP threads sleep (set before torch loads), and the
total is split between torch threads and loader workers; the vector ISA is pinned."""
import ast
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from e2e import ROOT, sh
from imgdag.threads import split_threads

TORCH_SCRIPTS = sorted(p for p in (ROOT / "scripts").glob("*.py")
                       if "import torch" in p.read_text() or "--threads" in p.read_text())


def top_level_imports(path) -> list[str]:
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module)
    return names


@pytest.mark.parametrize("script", TORCH_SCRIPTS, ids=lambda p: p.name)
def test_scripts_set_the_wait_policy_before_torch_loads(script):
    imports = [n for n in top_level_imports(script) if n.split(".")[0] in ("imgdag", "torch",
                                                                             "torchvision")]
    assert imports and imports[0] == "imgdag.threads", f"{script.name} imports {imports[0]} first"


def probe(env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import imgdag.threads, os, torch; print(os.environ['OMP_WAIT_POLICY'])"
    return subprocess.run([sys.executable, "-c", code], env={**env, **env_extra}, check=True,
                          capture_output=True, text=True, cwd=ROOT).stdout.strip()


def test_idle_threads_sleep_unless_the_user_says_otherwise():
    assert probe({}) == "PASSIVE"
    assert probe({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def test_the_total_is_split_between_torch_threads_and_workers():
    assert split_threads(2) == (1, 1)
    assert split_threads(1) == (1, 0)
    assert split_threads(4, 0) == (4, 0)
    assert split_threads(2, 3) == (1, 3)  # asked-for workers win; torch keeps one thread
    with pytest.raises(ValueError, match="at least 1"):
        split_threads(0)


def test_a_fixed_torch_thread_count_is_kept_on_any_core_count():
    assert split_threads(1, 0, torch_threads=2) == (2, 0)  # oversubscribed: the same sums
    assert split_threads(4, None, torch_threads=2) == (2, 2)  # the workers get the rest
    assert split_threads(4, 1, torch_threads=3) == (3, 1)


def test_network_rules_pass_compute_torch_threads_whatever_the_cores():
    """Every job whose float sums make a result (training, evaluation, multi-crop evaluation,
    feature extraction, prediction) gets the fixed torch thread count, not --cores."""
    recipes = ["mnist_lenet5", "tiny_imagenet_resnet18", "imagenet8_alexnet", "ilsvrc_alexnet_eval",
               "dog_breed_transfer"]
    out = sh(["snakemake", "-n", "-p", "--forceall", "--cores", "1", *recipes], ROOT).stdout
    commands = re.findall(r"\nShell command: (.*scripts/(?:train|evaluate|evaluate_crops|extract_features"
                          r"|predict)\.py.*)", out)
    scripts = sorted(re.search(r"scripts/(\w+)\.py", c).group(1) for c in commands)
    assert scripts == (["evaluate"] * 3 + ["evaluate_crops"] + ["extract_features"] * 2 + ["predict"] * 2
                       + ["train"] * 3), scripts
    assert all(re.search(r" --threads 1 --torch-threads 2 ", c) for c in commands), commands


def test_network_rules_pass_compute_cpu_isa():
    """Every job that runs a network (train, evaluate, evaluate_crops, extract_features, predict,
    train_transfer_head) gets params.yaml's vector ISA."""
    recipes = ["mnist_lenet5", "tiny_imagenet_resnet18", "imagenet8_alexnet", "ilsvrc_alexnet_eval",
               "dog_breed_transfer"]
    out = sh(["snakemake", "-n", "-p", "--forceall", "--cores", "1", *recipes], ROOT).stdout
    commands = re.findall(r"\nShell command: (.*scripts/(?:train|evaluate|evaluate_crops|extract_features"
                          r"|predict|train_transfer_head)\.py.*)", out)
    assert len(commands) == 12, commands
    assert all(" --cpu-isa avx2 " in c for c in commands), commands


ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR",
                 "MKL_ENABLE_INSTRUCTIONS")
TINY_RUN = {"model": "lenet5", "num_classes": 10, "epochs": 1, "batch_size": 16, "optimizer": "sgd",
            "lr": 0.05, "momentum": 0.9, "seed": 3, "device": "cpu",
            "normalize": {"mean": [0.5], "std": [0.25]}}


def weights_under(host: dict, cpu_isa: str, caches, out) -> bytes:
    """model.pt's weights after scripts/train.py (a few steps of LeNet-5, --cpu-isa) in a process
    whose environment says `host` about the vector ISA (and nothing else)."""
    env = {k: v for k, v in os.environ.items() if k not in ISA_VARIABLES}
    done = subprocess.run([sys.executable, str(ROOT / "scripts/train.py"), "--train-cache", str(caches / "train"),
                    "--val-cache", str(caches / "val"), "--params", json.dumps(TINY_RUN),
                    "--model-out", str(out / "model.pt"), "--log-csv", str(out / "log.csv"),
                    "--checkpoint-dir", str(out / "ckpt"), "--threads", "1", "--torch-threads", "1",
                    "--cpu-isa", cpu_isa],
                   env={**env, "PYTHONPATH": str(ROOT), **host}, cwd=ROOT, capture_output=True,
                   text=True, timeout=600)
    assert done.returncode == 0, f"{host} --cpu-isa {cpu_isa}: {done.stderr[-2000:]}"
    model = torch.load(out / "model.pt", weights_only=True)["model"]
    return b"".join(t.numpy().tobytes() for t in model.values())


CAPS = {"ATen": {"ATEN_CPU_CAPABILITY": "default"},  # each library held below the pin (avx2)
        "oneDNN": {"ONEDNN_MAX_CPU_ISA": "SSE41", "DNNL_MAX_CPU_ISA": "SSE41"},
        "MKL": {"MKL_CBWR": "SSE4_2", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}}
HOSTS = {"no setting": {}, "capped below the pin": {k: v for cap in CAPS.values() for k, v in cap.items()},
         "raised above the pin": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "ALL",
                                  "MKL_CBWR": "AVX512", "MKL_ENABLE_INSTRUCTIONS": "AVX512"}}


def test_the_pinned_isa_gives_the_same_weights_whatever_the_host_says(tmp_path):
    """compute.cpu_isa wins over the host's ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA and MKL
    variables, also those capping below the pin (avx2): the same weight bytes. The control: on
    this CPU (AVX-512), unpinned, those variables change the bytes."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 96), ("val", 16)):
        np.save(tmp_path / f"{split}.images.npy", rng.integers(0, 256, (n, 28, 28, 1), np.uint8))
        np.save(tmp_path / f"{split}.labels.npy", rng.integers(0, 10, n).astype(np.int64))
    pinned = {name: weights_under(host, "avx2", tmp_path, tmp_path / f"pinned{i}")
              for i, (name, host) in enumerate(HOSTS.items())}
    assert all(w == pinned["no setting"] for w in pinned.values()), \
        [name for name, w in pinned.items() if w != pinned["no setting"]]
    unpinned = weights_under({}, "host", tmp_path, tmp_path / "host")
    controls = {**CAPS, "MKL": {"MKL_CBWR": "COMPATIBLE"}}  # MKL's SSE4.2 branch is Intel's only
    changed = [name for i, (name, host) in enumerate(controls.items())
               if weights_under(host, "host", tmp_path, tmp_path / f"host{i}") != unpinned]
    if not changed:
        pytest.skip("control shows nothing: unpinned, the host's variables did not change the "
                    "weights on this CPU (the pin was checked above)")
    assert changed == list(controls)  # each library's kernel choice alone changes the bytes


def test_torch_run_before_the_pin_is_an_error():
    code = ("import sys, torch; torch.ones(8).sum(); sys.argv[1:] = ['--cpu-isa', 'sse41']; "
            "import imgdag.threads; imgdag.threads.check_cpu_isa()")
    env = {k: v for k, v in os.environ.items() if k not in ISA_VARIABLES}
    done = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert "compute.cpu_isa sse41: torch runs at AVX" in done.stderr, done.stderr


def test_the_mnist_demo_digits_are_the_same_whatever_the_host_says(tmp_path):
    """make_demo.py warps the MNIST demo digits with torch under the default pin: a host capped
    below it (which changed the digits' bytes when make_demo ran unpinned) makes the same files."""
    env = {k: v for k, v in os.environ.items() if k not in ISA_VARIABLES}
    made = {}
    for name in ("no setting", "capped below the pin"):
        subprocess.run([sys.executable, str(ROOT / "scripts/make_demo.py"), "mnist", str(tmp_path / name)],
                       env={**env, **HOSTS[name]}, cwd=ROOT, check=True, capture_output=True, timeout=300)
        made[name] = {f.name: f.read_bytes() for f in (tmp_path / name).iterdir()}
    assert len(made["no setting"]) == 4 and made["capped below the pin"] == made["no setting"]
