"""Multi-GPU and multi-node training through `torchrun` (DistributedDataParallel).

The same command trains in one process or in many; torchrun only adds its own options:

    torchrun --nproc_per_node=GPUS scripts/train.py --train-cache ... (as without torchrun)
    # one line per node, NODE_RANK 0..NODES-1, HOST:PORT reachable from every node:
    torchrun --nnodes=NODES --node_rank=NODE_RANK --nproc_per_node=GPUS \
        --rdzv_backend=c10d --rdzv_endpoint=HOST:PORT scripts/train.py ...

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; each process then uses `cuda:LOCAL_RANK` with
NCCL (gloo on CPU). `batch_size` in params stays the global batch: each rank takes
`batch_size // world_size` samples of every batch (`ArrayBatches(rank=, world_size=)`), so
the optimizer sees the same batches as in one process. Only rank 0 writes files; every rank
resumes from the same `last.pt`, so the checkpoint directory must be on a shared filesystem
when nodes differ. On a cluster a Snakemake executor plugin (SLURM, Kubernetes) runs the train
rule: its command becomes the torchrun line, with the GPUs and nodes as the rule's resources.
"""
import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def rank_share(order, rank: int, world_size: int, pad: bool):
    """This rank's part of an epoch's sample `order` (a numpy array or a tensor), as torch's
    DistributedSampler takes it: samples rank, rank + world_size, ...; with `pad` (training,
    where the ranks must step together) the order first grows to a multiple of world_size by
    repeating its start. One process (world_size 1) gets the whole order."""
    if pad and world_size > 1 and len(order):
        total = -(-len(order) // world_size) * world_size
        order = order[np.arange(total) % len(order)]
    return order[rank::world_size]


def init_from_env(device: torch.device) -> tuple[int, int, int, torch.device]:
    """Join the process group torchrun describes; returns (rank, world, local_rank, device).

    On CUDA each process takes `cuda:LOCAL_RANK` (NCCL); on CPU it keeps `device` (gloo).
    Without torchrun's variables: (0, 1, 0, device) and no process group.
    """
    if "WORLD_SIZE" not in os.environ:
        return 0, 1, 0, device
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return rank, world, local_rank, device


def is_main() -> bool:
    """True in the process that writes files: rank 0, or the only process."""
    return not dist.is_initialized() or dist.get_rank() == 0


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` in DistributedDataParallel when a process group is up; else unchanged."""
    if not dist.is_initialized():
        return model
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def all_reduce_sum(values: list[float]) -> list[float]:
    """Each number summed over all ranks (float64); the numbers themselves in one process."""
    if not dist.is_initialized():
        return list(values)
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")
    total = torch.tensor(values, dtype=torch.float64, device=on)
    dist.all_reduce(total)
    return total.tolist()


def shutdown() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()
