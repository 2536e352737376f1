"""Threads a rule gives a script: idle OpenMP threads sleep (set before torch loads), and the
total is split between torch threads and loader workers."""
import ast
import os
import re
import subprocess
import sys

import pytest

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
    feature extraction) gets the fixed torch thread count, not --cores."""
    recipes = ["mnist_lenet5", "tiny_imagenet_resnet18", "imagenet8_alexnet", "ilsvrc_alexnet_eval",
               "dog_breed_transfer"]
    out = sh(["snakemake", "-n", "-p", "--forceall", "--cores", "1", *recipes], ROOT).stdout
    commands = re.findall(r"\nShell command: (.*scripts/(?:train|evaluate|evaluate_crops|extract_features)\.py.*)",
                          out)
    scripts = sorted(re.search(r"scripts/(\w+)\.py", c).group(1) for c in commands)
    assert scripts == ["evaluate"] * 3 + ["evaluate_crops"] + ["extract_features"] * 2 + ["train"] * 3, scripts
    assert all(re.search(r" --threads 1 --torch-threads 2 ", c) for c in commands), commands
