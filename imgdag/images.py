"""uint8 image tensors and their normalisation, shared by training, evaluation and feature
extraction; `ImageLoader`, the DataLoader of evaluation and feature extraction."""
import sys
from collections import deque

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from imgdag.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def chw_tensor(pixels: np.ndarray) -> torch.Tensor:
    """A contiguous uint8 (C, H, W) tensor of an (H, W, C) array (as imgdag.codec returns)."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


class ImageLoader:
    """torch's DataLoader over `dataset` (its keyword arguments), through which a DataError raised
    in a worker process reaches the caller as itself, for cli.run's one line: torch re-raises a
    worker's exception by calling its type with one message, which DataError does not take, so
    it became a RuntimeError carrying the worker's traceback. Here the worker hands the error
    over as its batch instead."""

    def __init__(self, dataset: Dataset, **kwargs):
        self.loader = DataLoader(_ErrorsAsItems(dataset), collate_fn=_batch_or_error, **kwargs)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if isinstance(batch, DataError):
                raise batch
            yield batch


class _ErrorsAsItems(Dataset):
    """`dataset`'s items, or the DataError that reading one raised."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        try:
            return self.dataset[i]
        except DataError as e:
            return e


def _batch_or_error(items: list):
    """The batch of `items` (default_collate), or the first DataError among them."""
    for item in items:
        if isinstance(item, DataError):
            return item
    return default_collate(items)


class PixelNormalizer:
    """uint8 (N, C, H, W) -> float (x / 255 - mean) / std per channel, with mean and std kept on
    `device`: torchvision's arithmetic (`ToTensor`'s / 255, then `Normalize`) to the bit."""

    def __init__(self, mean, std, device: torch.device):
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self._mean_chw = np.asarray(mean, np.float32).reshape(-1, 1, 1)
        self._std_chw = np.asarray(std, np.float32).reshape(-1, 1, 1)

    def __call__(self, pixels: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The normalised batch, written into the float32 tensor `out` of the same shape when
        given (memory written before: no page faults), else into a new one."""
        # in place: one float tensor per batch, not four (on a CPU the allocations cost most)
        out = pixels.float() if out is None else out.copy_(pixels)
        return out.div_(255).sub_(self.mean).div_(self.std)

    def image_into(self, pixels: np.ndarray, out: np.ndarray) -> None:
        """The same of one uint8 (H, W, C) image, written into float32 (C, H, W) `out` by numpy
        (the same bits; it releases the GIL, and one image stays in the CPU's cache: about 5x
        a whole batch's speed per image)."""
        np.copyto(out, pixels.transpose(2, 0, 1), casting="unsafe")
        out /= np.float32(255)
        out -= self._mean_chw
        out /= self._std_chw


class BatchArrays:
    """Float batch arrays for the CPU, each reused once nothing outside holds it (the `.rec`
    loader's and ArrayBatches'). Fresh memory costs a page fault per 4 KiB as it is first
    written: at 256-px records about 3/4 of the time of cropping into it
    (benchmarks/bench_rec_loader.py).

    A batch goes out as torch.from_numpy(array): the tensor's storage holds the array, and so
    does every view or .numpy() of that tensor (and, in the `.rec` loader, every slot a decode
    thread writes); an array that only this pool refers to is free. At most `keep` arrays are
    kept: one the caller holds longer is left to it.
    """

    def __init__(self, shape: tuple, keep: int):
        self.shape, self.arrays = shape, deque(maxlen=keep)
        self.alone = self._refs(np.empty(0))  # the count of an array nothing else holds

    @staticmethod
    def _refs(array: np.ndarray) -> int:
        return sys.getrefcount(array)

    def take(self) -> np.ndarray:
        """A free array of `shape` (float32, contents undefined)."""
        for i in range(len(self.arrays)):
            if self._refs(self.arrays[i]) == self.alone + 1:  # + 1: the deque's own reference
                self.arrays.rotate(-i - 1)  # to the back: the oldest stays first in line
                return self.arrays[-1]
        self.arrays.append(np.empty(self.shape, np.float32))
        return self.arrays[-1]


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (N, 3, H, W) -> float normalised with ImageNet's mean and std."""
    return PixelNormalizer(IMAGENET_MEAN, IMAGENET_STD, images.device)(images)
