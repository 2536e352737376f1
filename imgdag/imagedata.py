"""Batches of large images decoded and cropped by loader threads, from a CNTK map file (one
image file per row) or straight from RecordIO (`.rec` + `.idx`).

A map file (`imgdag.formats.cntk_map`) lists `path<TAB>label`; relative paths are taken under
`image_root`. A `.rec` holds the encoded images and labels (`imgdag.formats.recordio`). Threads
decode each image with `imgdag.codec` (a JPEG at the smallest DCT scale that keeps the crop's
detail) and cut a `crop` x `crop` uint8 tensor:
- training: a random-resized crop (area fraction min_scale..1 of the image, aspect ratio
  3/4..4/3, as torchvision's RandomResizedCrop) and, with `mirror`, a random horizontal flip;
  JPEGs decode with libjpeg-turbo's fast IDCT and upsampling (`codec`'s `fast`: measured in
  benchmarks/bench_codec.py on the real ImageNet sample at about 1.1x the exact decode's speed
  and 1.3 levels mean |difference|, inside im2rec's 2-level tolerance: noise beside a random
  crop; packing and evaluation stay exact);
- evaluation: the shorter side resized to `resize`, then the centre crop, decoded exactly.
For a GPU, batches stay contiguous uint8 (B, 3, crop, crop) until they reach it, where they are
normalised; on a CPU each crop is normalised as it is written. The order of epoch e and every image's crop are drawn from (seed, e, image index)
alone: they do not depend on the number of threads, and a resumed run repeats an
uninterrupted one. Under DDP (`rank`, `world_size`) each process takes samples rank,
rank + world_size, ... of the epoch's order (padded by repeating its first samples when
training, so the ranks step together), as imgdag.batches.ArrayBatches.
"""
import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Iterator, Optional

import numpy as np
import torch

from imgdag import codec
from imgdag.distributed import rank_share
from imgdag.errors import DataError
from imgdag.formats.cntk_map import iter_cntk_map
from imgdag.formats.recordio import RecordReader
from imgdag.images import BatchArrays, PixelNormalizer

ASPECT_RANGE = (3 / 4, 4 / 3)


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([k % 2**64 for k in keys])


def random_resized_box(width: int, height: int, rng: np.random.Generator, min_scale: float):
    """(left, top, right, bottom) of a random crop covering min_scale..1 of the image area with
    aspect ratio in ASPECT_RANGE (10 tries, then the largest centred box), as torchvision."""
    log_low, log_high = (math.log(r) for r in ASPECT_RANGE)
    for _ in range(10):
        area = width * height * rng.uniform(min_scale, 1.0)
        aspect = math.exp(rng.uniform(log_low, log_high))
        w, h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    w, h = width, height
    if width / height < ASPECT_RANGE[0]:
        h = round(width / ASPECT_RANGE[0])
    elif width / height > ASPECT_RANGE[1]:
        w = round(height * ASPECT_RANGE[1])
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def decode_crop(data: bytes, source, crop: int, resize: int, seed_keys, min_scale: float,
                mirror: bool) -> np.ndarray:
    """(crop, crop, 3) RGB of one image. Training (seed_keys the (seed, epoch, index) its draws
    come from): a random-resized crop, mirrored at random with `mirror`; evaluation (seed_keys
    falsy): shorter side to `resize`, centre crop."""
    if not seed_keys:
        return codec.resize_center_crop(codec.decode_rgb(data, source, resize), resize, crop)
    rng = _rng(*seed_keys)
    pixels = codec.decode_resized_crop(data, source, lambda w, h: random_resized_box(w, h, rng, min_scale), crop,
                                       fast=True)
    return pixels[:, ::-1] if mirror and rng.random() < 0.5 else pixels


class MapFileImages:
    """The images a CNTK map file lists: `labels`, and `read(i)` -> (bytes, source name)."""

    def __init__(self, map_path, image_root=None):
        root = str(image_root) if image_root is not None else ""
        self.paths, self.labels = [], []  # strings, not Path objects: a third of the memory
        for path, label in iter_cntk_map(map_path):
            self.paths.append(os.path.join(root, path))
            self.labels.append(label)
        if not self.paths:
            raise DataError(map_path, "no images listed")
        missing = [p for p in self.paths if not os.path.isfile(p)]
        if missing:
            raise DataError(map_path, f"{len(missing)} listed images are not files, "
                                      f"e.g. {missing[0]} (is --image-root right?)")

    def read(self, i: int) -> tuple[bytes, str]:
        return codec.read_bytes(self.paths[i]), self.paths[i]


class RecordImages:
    """The image records of a `.rec` (in `.idx` order): `labels` (each record's first label),
    and `read(i)` -> (bytes, "<rec> record <key>")."""

    def __init__(self, rec_path, idx_path=None):
        self.reader = RecordReader(rec_path, idx_path)
        if not len(self.reader):
            raise DataError(rec_path, "no records")
        self.labels = [int(self.reader.label_at(offset)) for offset in self.reader.offsets]

    def read(self, i: int) -> tuple[bytes, str]:
        return self.reader[i].image, f"{self.reader.rec_path} record {self.reader.keys[i]}"


class _EpochBatchSampler:
    """Batches of (index, epoch) keys of this rank's share of epoch `epoch`."""

    def __init__(self, count: int, batch_size: int, shuffle: bool, seed: int, rank: int,
                 world_size: int):
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} does not split over {world_size} processes")
        self.count, self.batch_size, self.shuffle, self.seed = count, batch_size // world_size, shuffle, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0

    def shard(self) -> np.ndarray:
        """This rank's image indices of the current epoch, in order."""
        order = _rng(self.seed, self.epoch).permutation(self.count) if self.shuffle \
            else np.arange(self.count)
        return rank_share(order, self.rank, self.world_size, pad=self.shuffle)  # pad when training

    def __len__(self) -> int:
        return -(-len(self.shard()) // self.batch_size)

    def __iter__(self):
        order = self.shard()
        for start in range(0, len(order), self.batch_size):
            yield [(int(i), self.epoch) for i in order[start:start + self.batch_size]]


class ImageBatches:
    """Iterable of (images float (B,3,crop,crop), labels int64 (B,)) batches of `images` (a
    MapFileImages or RecordImages), one epoch at a time (the engine's batches interface, like
    ArrayBatches); `batch_size` is the global batch, split over `world_size` processes.

    `num_workers` decoding threads (0: decode in the calling thread) write each crop straight
    into its place in the batch tensor: no worker processes to start, nothing pickled. For a
    GPU the batch is uint8 (pinned), normalised on the GPU; on a CPU the threads normalise each
    crop as they write it (PixelNormalizer.image_into). The codecs and numpy release the GIL,
    so the threads decode in parallel; they keep up to PREFETCH_BATCHES batches ahead of the
    one being used. CPU batch memory is reused once the caller has let go of it (BatchArrays).
    """

    PREFETCH_BATCHES = 2

    def __init__(self, images, batch_size: int, device: torch.device, mean, std, crop: int,
                 resize: Optional[int] = None, train: bool = False, min_scale: float = 0.08,
                 mirror: bool = True, seed: int = 0, num_workers: int = 0, rank: int = 0,
                 world_size: int = 1):
        self.images, self.labels, self.device = images, images.labels, device
        self.on_gpu = device.type == "cuda"
        self.crop, self.resize = crop, resize or crop
        self.train, self.min_scale, self.mirror, self.seed = train, min_scale, mirror, seed
        self.sampler = _EpochBatchSampler(len(self.labels), batch_size, train, seed, rank, world_size)
        self.pool = ThreadPoolExecutor(num_workers, "imgdag-decode") if num_workers > 0 else None
        self.normalize = PixelNormalizer(mean, std, device)
        # CPU batch memory, reused from epoch to epoch: the yielded batch, the caller's last
        # one, those ahead; an array an abandoned epoch's threads still write stays referenced
        self.arrays = None if self.on_gpu else BatchArrays(
            (self.sampler.batch_size, 3, crop, crop), keep=self.PREFETCH_BATCHES + 3)

    def __len__(self) -> int:
        return len(self.sampler)

    def _decode_into(self, out: np.ndarray, index: int, epoch: int) -> None:
        """Decode and crop image `index` into `out` (3, crop, crop): uint8 for a GPU, else
        normalised floats; its draws from (seed, epoch, index) when training."""
        data, source = self.images.read(index)
        pixels = decode_crop(data, source, self.crop, self.resize,
                             self.train and (self.seed, epoch, index), self.min_scale, self.mirror)
        if self.on_gpu:
            out[...] = pixels.transpose(2, 0, 1)
        else:
            self.normalize.image_into(pixels, out)

    def _start(self, keys: list[tuple[int, int]]):
        """(batch tensor, labels, futures of its crops): decoding starts (or, without threads,
        is done); on a CPU into an array of `self.arrays`."""
        shape = (len(keys), 3, self.crop, self.crop)
        if self.on_gpu:  # pinned: torch's host allocator reuses it once the copy is done
            x = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
            out = x.numpy()
        else:
            out = self.arrays.take() if shape == self.arrays.shape \
                else np.empty(shape, np.float32)  # a short last batch
            x = torch.from_numpy(out)
        if self.pool is None:
            for slot, (index, epoch) in enumerate(keys):
                self._decode_into(out[slot], index, epoch)
            futures = []
        else:
            futures = [self.pool.submit(self._decode_into, out[slot], index, epoch)
                       for slot, (index, epoch) in enumerate(keys)]
        return x, torch.tensor([self.labels[index] for index, _ in keys]), futures

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of `epoch`, in the order and with the crops drawn from (seed, epoch)."""
        self.sampler.epoch = epoch
        keys = iter(self.sampler)
        ahead = deque(self._start(k)
                      for k in islice(keys, self.PREFETCH_BATCHES if self.pool else 1))
        try:
            while ahead:
                x, y, futures = ahead.popleft()
                if (following := next(keys, None)) is not None:
                    ahead.append(self._start(following))
                for future in futures:
                    future.result()  # an image's DataError is raised here, as itself
                if self.on_gpu:  # uint8 travels; normalised where the model runs
                    x = self.normalize(x.to(self.device, non_blocking=True))
                    x = x.contiguous(memory_format=torch.channels_last)
                yield x, y.to(self.device, non_blocking=True)
        finally:  # left early (an error, a break): no more decoding for this epoch
            for _, _, futures in ahead:
                for future in futures:
                    future.cancel()
