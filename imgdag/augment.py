"""Batch augmentation on whole tensors: no per-image Python.

`random_crop_rotate` does what the MXNet LeNet source does image by image (random crop of
crop_min..crop_max pixels resized back to the input size, rotation up to +-max_degrees,
optional horizontal mirror) as a single `affine_grid` + `grid_sample` call. Without rotation
`random_crop_flip` does the crop and mirror by integer indexing (nearest pixel: whole rows,
then one gather of the columns), many times cheaper; `batch_augment` picks between them.
"""
import math
from functools import partial

import numpy as np
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


def random_crop_flip(x, generator: torch.Generator, crop_min: int, crop_max: int,
                     mirror: bool = False, shard: tuple[int, int] = (0, 1),
                     idx: torch.Tensor | None = None) -> torch.Tensor:
    """Random square crops of crop_min..crop_max pixels scaled back to the input size by
    nearest-pixel indexing, optionally mirrored, for a whole (N,H,W,C) batch of any dtype (the
    uint8 pixels, before conversion). Random numbers come from `generator` (on CPU); `shard`
    as in random_crop_rotate. With `idx`, the batch is x[idx]: x holds all the images, a tensor
    or a numpy array (the memory-mapped cache), and the crops' rows are picked from it
    straight, with no copy of the whole batch first (docs/benchmarks.md gives what it saves).

    Two copies, no per-pixel index: the rows are picked whole (one take), then one gather
    picks the columns (mirror included) and puts the channels first. The result is (N,H,W,C)
    as a view of (N,C,H,W) contiguous memory, so the caller's permute to planes costs
    nothing."""
    rank, world = shard
    (_, h, w, channels), b = x.shape, len(x) if idx is None else len(idx)
    n = b * world
    if not 1 <= crop_min <= crop_max <= min(h, w):
        raise ValueError(f"crop sizes {crop_min}..{crop_max} do not fit {h}x{w} images")
    side = torch.randint(crop_min, crop_max + 1, (n, 1), generator=generator)
    top = (torch.rand(n, 1, generator=generator) * (h - side + 1)).long()
    left = (torch.rand(n, 1, generator=generator) * (w - side + 1)).long()
    flip = torch.zeros(n, 1, dtype=torch.bool)
    if mirror:
        flip = torch.rand(n, 1, generator=generator) < 0.5
    rows = top + (side * (torch.arange(h) + 0.5) / h).long()
    step = (side * (torch.arange(w) + 0.5) / w).long()
    cols = left + torch.where(flip, side - 1 - step, step)
    rows = rows[rank::world]
    # channel c of column j sits at cols * channels + c of a picked row; the same for every row
    cols = cols[rank::world, None, None, :] * channels + torch.arange(channels)[:, None, None]
    device = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
    if device.type == "cuda":  # pinned: the copies do not make the host wait
        rows, cols = rows.pin_memory(), cols.pin_memory()
    rows, cols = rows.to(device, non_blocking=True), cols.to(device, non_blocking=True)
    images = torch.arange(b, device=device) if idx is None else idx.to(device)
    rows = (images[:, None] * h + rows).view(-1)  # in x seen as (N * H) rows of W * C values
    if isinstance(x, torch.Tensor):
        picked = x.reshape(-1, w * channels).index_select(0, rows)
    else:  # a read-only memory-map, which torch.from_numpy would warn about: numpy takes the rows
        picked = torch.from_numpy(np.take(x.reshape(-1, w * channels), rows.numpy(), axis=0))
    picked = picked.view(b, 1, h, w * channels)
    planes = picked.expand(b, channels, h, w * channels).gather(3, cols.expand(b, channels, h, w))
    return planes.permute(0, 2, 3, 1)


def batch_augment(crop_min: int, crop_max: int, max_degrees: float = 0.0,
                  mirror: bool = False) -> dict:
    """The params' `augment` section as ArrayBatches keyword arguments: the affine warp
    (`augment`, on the normalised floats) only when rotation is asked for, else the integer
    crop and mirror (`pixel_augment`, on the uint8 pixels)."""
    if max_degrees:
        return {"augment": partial(random_crop_rotate, crop_min=crop_min, crop_max=crop_max,
                                   max_degrees=max_degrees, mirror=mirror)}
    return {"pixel_augment": partial(random_crop_flip, crop_min=crop_min, crop_max=crop_max,
                                     mirror=mirror)}
