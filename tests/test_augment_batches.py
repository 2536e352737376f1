"""Batch augmentation and array batches: geometry, reproducibility per (seed, epoch)."""
import numpy as np
import torch

from imgdag.augment import random_crop_rotate
from imgdag.batches import ArrayBatches


def test_full_crop_without_rotation_is_identity():
    x = torch.rand(4, 1, 28, 28)
    out = random_crop_rotate(x, torch.Generator().manual_seed(0), 28, 28, 0.0)
    assert torch.allclose(out, x, atol=1e-5)


def test_crop_zooms_and_rotation_moves_pixels():
    x = torch.zeros(1, 1, 28, 28)
    x[..., 12:16, 12:16] = 1.0  # a centred square
    zoomed = random_crop_rotate(x, torch.Generator().manual_seed(0), 14, 14, 0.0)
    assert zoomed.sum() > 2 * x.sum()  # a 14 px crop resized to 28 px doubles the square
    bar = torch.zeros(1, 1, 28, 28)
    bar[..., 13:15, :] = 1.0  # a horizontal bar
    turned = random_crop_rotate(bar.repeat(64, 1, 1, 1), torch.Generator().manual_seed(1),
                                28, 28, 45.0)
    moved = (turned - bar).abs().amax(dim=(1, 2, 3))
    assert moved.mean() > 0.5 and moved.max() > 0.9  # rotated bars leave their rows


def test_batches_reproducible_per_epoch_and_cover_all():
    images = np.arange(10 * 2 * 2, dtype=np.uint8).reshape(10, 2, 2, 1)
    labels = np.arange(10)
    batches = ArrayBatches(images, labels, 4, torch.device("cpu"), [0.0], [1 / 255],
                           shuffle=True, seed=3)
    assert len(batches) == 3
    first = [y.tolist() for _, y in batches.epoch(5)]
    again = [y.tolist() for _, y in batches.epoch(5)]
    other = [y.tolist() for _, y in batches.epoch(6)]
    assert first == again and first != other
    assert sorted(sum(first, [])) == list(range(10))
    x, y = next(iter(batches.epoch(5)))
    # pixels follow their labels through the shuffle: image i holds values 4i..4i+3
    assert torch.equal(x[:, 0, 0, 0], (y * 4).float())
