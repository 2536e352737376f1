"""Batch augmentation on whole tensors: one affine warp per batch, no per-image Python.

`random_crop_rotate` does what the MXNet LeNet source does image by image (random crop of
crop_min..crop_max pixels resized back to the input size, rotation up to +-max_degrees,
optional horizontal mirror) as a single `affine_grid` + `grid_sample` call.
"""
import math

import torch
import torch.nn.functional as F


def random_crop_rotate(x: torch.Tensor, generator: torch.Generator, crop_min: int,
                       crop_max: int, max_degrees: float, mirror: bool = False,
                       shard: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """Augment a float batch (N,C,H,W); random numbers come from `generator` (on CPU).

    shard=(rank, world): x is rows rank, rank + world, ... of a batch world times as large
    (a DDP rank's share); the whole batch's random numbers are drawn and x gets its rows'.
    """
    rank, world = shard
    n, (_, _, h, w) = len(x) * world, x.shape
    size = torch.randint(crop_min, crop_max + 1, (n,), generator=generator).float()
    scale = size / min(h, w)
    # crop centre: anywhere that keeps the crop inside the image, in [-1, 1] coordinates
    room = 1 - scale
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * room.unsqueeze(1)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(max_degrees)
    flip = torch.ones(n)
    if mirror:
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)[rank::world]
    if x.device.type == "cuda":  # pinned: the copy does not make the host wait
        theta = theta.pin_memory()
    theta = theta.to(x.device, x.dtype, non_blocking=True)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
