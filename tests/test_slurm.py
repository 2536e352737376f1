"""The SLURM profile: every job carries its rule's resources (a dry run of every recipe), and
the MNIST recipe runs through `snakemake --profile profiles/slurm` on a real one-node cluster
(scripts/slurm_local.sh) with the same outputs as a local run.
"""
import csv
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import time

import pytest
import torch
import yaml

from e2e import ROOT, copy_repo, sh

# rules that run a network: the only ones asking for a GPU
GPU_RULES = {"mnist_train", "mnist_evaluate", "mnist_predict", "imagenet8_train",
             "imagenet8_evaluate", "ilsvrc_alexnet_crops", "tiny_train", "tiny_evaluate",
             "tiny_predict", "dog_features", "dog_head"}

needs_plugin = pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="snakemake-executor-plugin-slurm is not installed (make cluster-env)")


def declared_resources():
    """rule name -> {resource: value text} as written in rules/*.smk."""
    declared = {}
    for path in (ROOT / "rules").glob("*.smk"):
        for name, body in re.findall(r"(?ms)^rule (\w+):\n(.*?)(?=^rule |\Z)", path.read_text()):
            block = re.search(r"    resources:\n((?:        .*\n)+)", body)
            declared[name] = dict(re.findall(r"(\w+)=([^,\n]+)", block.group(1))) if block else {}
    return declared


def dry_run_jobs(cwd, *args):
    """(rule, {resource: value}) for each job of a dry run with the SLURM profile."""
    return parse_jobs(sh(["snakemake", "-n", "--profile", "profiles/slurm", *args], cwd).stdout)


def parse_jobs(out):
    """(rule, {resource: value}) for each job a dry run's output lists."""
    jobs = []
    for block in out.split("\nrule ")[1:]:
        resources = re.search(r"\n    resources: (.*)", block).group(1)
        jobs.append((block.split(":", 1)[0], dict(kv.split("=", 1) for kv in resources.split(", "))))
    return jobs


@needs_plugin
def test_dry_run_jobs_carry_the_declared_resources(tmp_path):
    declared = declared_resources()
    jobs = dry_run_jobs(ROOT, "--forceall")
    # a CPU-only cluster (compute.gpus_per_job 0), Caffe weights to convert and a raw folder
    # read in place (the two rules the default DAG leaves out)
    (tmp_path / "bvlc_alexnet.npy").write_bytes(b"")
    (tmp_path / "tiny").mkdir()
    (tmp_path / "cpu.yaml").write_text(yaml.safe_dump({
        "compute": {"gpus_per_job": 0},
        "datasets": {"tiny_imagenet": {"raw": str(tmp_path / "tiny")}},
        "recipes": {"ilsvrc_alexnet_eval": {"weights": {
            "source": "caffe_npy", "path": str(tmp_path / "bvlc_alexnet.npy")}}}}))
    cpu_jobs = dry_run_jobs(ROOT, "--forceall", "--configfile", str(tmp_path / "cpu.yaml"))
    assert {rule for rule, _ in jobs + cpu_jobs} - {"all"} == set(declared)  # every rule
    for rule, resources in jobs + cpu_jobs:
        if rule != "all":
            assert resources["mem_mb"] == declared[rule]["mem_mb"], rule
            assert resources["runtime"] == declared[rule]["runtime"], rule
    for rule, resources in jobs:
        assert (resources.get("gpu") == "1") == (rule in GPU_RULES), (rule, resources)
    assert all(resources.get("gpu", "0") == "0" for _, resources in cpu_jobs)


def missing_cluster_tools():
    """Why a local SLURM cluster cannot start here, or '' when it can."""
    if os.geteuid() != 0:
        return "not root: slurmd and munged run as root (CI runs as root)"
    missing = [t for t in ("munged", "slurmctld", "slurmd", "sbatch") if not shutil.which(t)]
    if missing:
        return f"{', '.join(missing)} not installed (make slurm-packages, needs apt)"
    return ""


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A one-node SLURM cluster for this module; yields its folder (SLURM_CONF inside)."""
    if missing_cluster_tools():
        pytest.skip(missing_cluster_tools())
    folder = tmp_path_factory.mktemp("slurm")
    script = str(ROOT / "scripts" / "slurm_local.sh")
    subprocess.run([script, "start", str(folder)], check=True, capture_output=True, timeout=120)
    os.environ["SLURM_CONF"] = str(folder / "slurm.conf")  # for sh(): sbatch, squeue, scontrol
    yield folder
    del os.environ["SLURM_CONF"]
    subprocess.run([script, "stop", str(folder)], check=True, timeout=120)


def digest(path):
    """sha256 of a file's bytes; of a torch file's contents (its zip names the temporary file
    it was written to, so equal models differ in bytes)."""
    if path.suffix != ".pt":
        return hashlib.sha256(path.read_bytes()).hexdigest()
    h = hashlib.sha256()
    def walk(value):
        if isinstance(value, dict):
            for key in sorted(value, key=str):
                h.update(str(key).encode())
                walk(value[key])
        elif torch.is_tensor(value):
            h.update(value.cpu().contiguous().view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(value).encode())
    walk(torch.load(path, map_location="cpu", weights_only=False))
    return h.hexdigest()


def outputs(ws):
    """Every file the run made under data/ and results/, by content (without timings)."""
    found = {}
    for path in sorted([*ws.glob("data/**/*"), *ws.glob("results/**/*")]):
        if path.is_file() and "checkpoints" not in path.parts:
            found[str(path.relative_to(ws))] = digest(path)
    found.pop("results/mnist_lenet5/latency.json")  # forward timings
    found.pop("results/mnist_lenet5/train_times.csv")  # seconds per epoch
    with open(ws / "results/mnist_lenet5/train_log.csv") as f:
        rows = [{k: v for k, v in row.items() if "time" not in k and "seconds" not in k}
                for row in csv.DictReader(f)]
    found["results/mnist_lenet5/train_log.csv"] = rows
    found.pop("results/mnist_lenet5/curves.png")  # matplotlib stamps nothing, but fonts may vary
    return found


@needs_plugin
@pytest.mark.slow
def test_mnist_recipe_through_slurm_equals_a_local_run(slurm, mnist_done, tmp_path):
    """The session's local run (`mnist_done`, --cores 2) against the same recipe through SLURM,
    the same threads per job both ways: --max-threads 2 caps them at this node's 2 CPUs as
    --cores 2 did."""
    ws = copy_repo(tmp_path)
    shutil.copy2(mnist_done / "params.yaml", ws / "params.yaml")  # one epoch, as the local run
    expected = [rule for rule, _ in dry_run_jobs(ws, "--forceall", "mnist_lenet5")
                if rule not in ("mnist_lenet5", "datasets_checked")]  # local rules: not submitted
    start = time.monotonic()
    sh(["snakemake", "--profile", "profiles/slurm", "--max-threads", "2", "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
        "mnist_lenet5"], ws, timeout=1500)  # squeue: the profile's
    seconds = time.monotonic() - start
    jobs = re.findall(r"Name=(\S+) JobState=(\S+)", (slurm / "jobcomp.log").read_text())
    print(f"\nSLURM: {len(jobs)} jobs in {seconds:.0f} s; load {os.getloadavg()}")
    # every job went through sbatch and completed
    assert len(jobs) == len(expected) and {state for _, state in jobs} == {"COMPLETED"}
    # the training job asked SLURM for a GPU and its memory (the node's GRES stands in for one)
    shown = sh(["scontrol", "show", "job", "-o"], ROOT).stdout
    train = [line for line in shown.splitlines() if "rule_mnist_train" in line]
    assert len(train) == 1 and "gres:gpu:1" in train[0] and "mem=6000M" in train[0], shown
    assert outputs(ws) == outputs(mnist_done)
    # a second run submits nothing
    again = sh(["snakemake", "--profile", "profiles/slurm", "mnist_lenet5"], ws)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert len(re.findall(r"JobId=", (slurm / "jobcomp.log").read_text())) == len(jobs)


def test_slurm_local_script_help_and_usage():
    script = str(ROOT / "scripts" / "slurm_local.sh")
    done = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("Usage: scripts/slurm_local.sh start")
    wrong = subprocess.run([script, "begin"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "Usage:" in wrong.stderr
