"""Training batches sliced from a uint8 array cache as whole tensors (the small-image fast path).

On CUDA the whole array and the labels move to the GPU once; on CPU batches are gathered from
the memory-map, and their float memory is reused once the caller has let go of a batch
(`imgdag.images.BatchArrays`: fresh memory costs a page fault per 4 KiB, up to 2/3 of
normalising a 64 px batch when the allocator hands out new pages). Either way a batch is
converted, normalised and augmented as one tensor. The order and the augmentation of epoch e
depend only on (seed, e) (`imgdag.seeds.epoch_seed`), so a resumed run repeats an
uninterrupted one.

Under DDP (`rank`, `world_size`) each process takes its share of every batch as
`DistributedSampler` would: samples rank, rank + world_size, ... of the epoch's order, so
`batch_size` stays the global batch and the ranks' batches together are one process's batches.
`augment(x, generator, shard=(rank, world_size))` (on the normalised float batch) and
`pixel_augment(images, generator, shard=..., idx=idx)` (on the uint8 (B,H,W,C) pixels of
images[idx] before conversion: integer crops and flips, taken from all the images at once)
draw the random numbers of the whole batch and keep this rank's, so each sample is augmented
as in one process.
"""
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from imgdag.distributed import rank_share
from imgdag.images import BatchArrays, PixelNormalizer
from imgdag.seeds import epoch_seed


class ArrayBatches:
    """Iterable of (images float (B,C,H,W), labels int64 (B,)) batches, one epoch at a time.

    pad (with world_size > 1): repeat the epoch's first samples so every rank gets as many and
    the ranks step together (DistributedSampler's default; needed for training). Without it
    the shards are disjoint and exact, as evaluation wants.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int,
                 device: torch.device, mean, std, shuffle: bool = False, seed: int = 0,
                 augment: Optional[Callable] = None, pixel_augment: Optional[Callable] = None,
                 rank: int = 0, world_size: int = 1, pad: bool = True):
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} does not split evenly over "
                             f"{world_size} processes")
        self.device, self.shuffle, self.seed = device, shuffle, seed
        self.batch_size = batch_size // world_size  # per rank
        self.augment, self.pixel_augment = augment, pixel_augment
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).to(device)
        # keep (N,H,W,C) uint8: on CUDA resident on the GPU, on CPU the memory-map itself
        self.images = torch.from_numpy(np.ascontiguousarray(images)).to(device) \
            if device.type == "cuda" else images
        self.normalize = PixelNormalizer(mean, std, device)
        self._arrays = None  # on a CPU: the float batches, reused from epoch to epoch (BatchArrays)

    def __len__(self) -> int:
        return -(-len(self._shard(torch.arange(len(self.labels)))) // self.batch_size)

    def _shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's samples of the epoch's order (all of them in one process)."""
        return rank_share(order, self.rank, self.world_size, self.pad)

    def _gather(self, idx: torch.Tensor) -> torch.Tensor:
        if isinstance(self.images, torch.Tensor):
            return self.images[idx]
        return torch.from_numpy(np.take(self.images, idx.numpy(), axis=0))  # 8x a memmap's [idx]

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of `epoch`, shuffled and augmented reproducibly from (seed, epoch)."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        n = len(self.labels)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        # on CUDA the order moves to the device once: no host copy or sync per batch
        order = self._shard(order).to(self.labels.device)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.pixel_augment is not None:  # picks the batch's pixels from the images itself
                x = self.pixel_augment(self.images, generator, shard=(self.rank, self.world_size), idx=idx)
            else:
                x = self._gather(idx)  # uint8 (B,H,W,C)
            # (B,C,H,W): planes made contiguous while still uint8, then normalised
            # (about 10x cheaper than converting the channels-last view)
            planes = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2).contiguous()
            out = None
            if self.device.type == "cpu":
                # the shape is known once the first batch is cropped; a short last batch gets
                # fresh memory (as in imgdag.imagedata.ImageBatches)
                if self._arrays is None:
                    self._arrays = BatchArrays(tuple(planes.shape), keep=3)
                if self._arrays.shape == tuple(planes.shape):
                    out = torch.from_numpy(self._arrays.take())
            x = self.normalize(planes, out)
            del planes, out  # x alone holds the batch's memory now
            if self.augment is not None:
                x = self.augment(x, generator, shard=(self.rank, self.world_size))
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


class TensorBatches:
    """Iterable of (features float (B,D), labels int64 (B,)) batches from in-memory tensors (the
    cached features a transfer head trains on), shuffled reproducibly from (seed, epoch)."""

    def __init__(self, features, labels, batch_size: int, device: torch.device,
                 shuffle: bool = False, seed: int = 0):
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.features = torch.as_tensor(features, dtype=torch.float32).to(device)
        self.labels = torch.as_tensor(labels, dtype=torch.long).to(device)
        if len(self.features) != len(self.labels):
            raise ValueError(f"{len(self.features)} feature rows but {len(self.labels)} labels")

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of `epoch`, in an order that depends only on (seed, epoch)."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        n = len(self.labels)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        order = order.to(self.features.device)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.features[idx], self.labels[idx]
