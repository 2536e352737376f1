"""Training across nodes: two torchrun launches on this machine acting as two nodes (--nnodes 2,
c10d rendezvous, gloo) train to the weights of one process at the same global batch; and the
compute.distributed switch turns the training rules' command into that launch.
"""
import json
import os
import re
import socket
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from e2e import sh
from test_ddp import PARAMS, max_diff, weights, write_cache

ONE_EPOCH = {**PARAMS, "epochs": 1}


def train_args(tmp_path, out):
    return ["--train-cache", tmp_path / "train", "--val-cache", tmp_path / "val",
            "--params", json.dumps(ONE_EPOCH), "--model-out", out / "model.pt",
            "--log-csv", out / "log.csv", "--curves-png", out / "curves.png",
            "--checkpoint-dir", out / "checkpoints", "--threads", "1"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_match_one_process(tmp_path):
    write_cache(tmp_path / "train", 256, seed=0)  # 8 global batches of 32
    write_cache(tmp_path / "val", 64, seed=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = str(ROOT / "scripts" / "train.py")
    one = tmp_path / "one"
    subprocess.run([sys.executable, script, *map(str, train_args(tmp_path, one))], check=True,
                   env=env, capture_output=True, timeout=300)
    port, nodes = free_port(), tmp_path / "nodes"
    launches = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
         "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-id", "two-nodes",
         "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-conf", f"is_host={rank == 0}",
         script, *map(str, train_args(tmp_path, nodes))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = [launch.communicate(timeout=300)[0] for launch in launches]
    assert [launch.returncode for launch in launches] == [0, 0], "\n".join(outputs)[-4000:]
    diff = max_diff(weights(one / "model.pt"), weights(nodes / "model.pt"))
    print(f"max abs weight difference after an epoch, 2 nodes vs 1 process: {diff:.2e}")
    assert diff < 1e-5


def test_distributed_switch_launches_torchrun(tmp_path):
    config = tmp_path / "dist.yaml"
    config.write_text(yaml.safe_dump({"compute": {"distributed": {"nnodes": 2,
                                                                  "nproc_per_node": 2}}}))
    out = sh(["snakemake", "-n", "-p", "--forceall", "results/mnist_lenet5/model.pt",
              "--configfile", str(config)], ROOT).stdout
    command = re.search(r"\nShell command: (.*scripts/train.py.*)", out).group(1)
    assert command.startswith("TQDM_DISABLE=1 srun --overlap --nodes 2 --ntasks-per-node 1 torchrun --nnodes 2"
                              " --nproc-per-node 2 --rdzv-backend c10d"), command
    assert "gpu=4, nodes=2" in out  # one GPU per process, one SLURM node per torchrun node
    config.write_text(yaml.safe_dump({"compute": {"distributed": {"nproc_per_node": 2}}}))
    out = sh(["snakemake", "-n", "-p", "--forceall", "results/mnist_lenet5/model.pt",
              "--configfile", str(config)], ROOT).stdout
    assert "torchrun --standalone --nnodes 1 --nproc-per-node 2 scripts/train.py" in out
