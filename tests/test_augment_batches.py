"""Batch augmentation and array batches: geometry, reproducibility per (seed, epoch)."""
import numpy as np
import pytest
import torch
from torchvision.transforms import functional as TF

from imgdag.augment import batch_augment, random_crop_flip, random_crop_rotate
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


def test_batches_are_normalised_as_torchvision_to_the_bit():
    """ToTensor's / 255, then Normalize: the arithmetic of every model's input."""
    pixels = np.random.default_rng(0).integers(0, 256, (5, 6, 7, 3), np.uint8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    x, _ = next(iter(ArrayBatches(pixels, np.arange(5), 5, torch.device("cpu"), mean, std).epoch(0)))
    assert torch.equal(x, TF.normalize(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255, mean, std))


def test_cpu_batch_memory_is_reused_only_once_the_caller_lets_go(allocated):
    """CPU batches are written into float memory used before (no fresh pages per step), but
    never into a batch the caller still holds, whole or as a view."""
    pixels = np.random.default_rng(0).integers(0, 256, (12, 8, 8, 3), np.uint8)
    b = ArrayBatches(pixels, np.arange(12), 2, torch.device("cpu"), [0.5] * 3, [0.25] * 3, shuffle=True,
                     seed=1, **batch_augment(6, 8, mirror=True))
    reference = [x.clone() for x, _ in b.epoch(1)]
    kept = list(b.epoch(1))  # every batch held, uncopied
    views = [x[0] for x, _ in b.epoch(1)]  # only a view of each held
    assert all(torch.equal(x, r) for (x, _), r in zip(kept, reference, strict=True))
    assert all(torch.equal(v, r[0]) for v, r in zip(views, reference, strict=True))
    allocated.clear()
    # each batch let go after its step: a few arrays, and every batch is written into one of them
    addresses = [(x.data_ptr(), torch.equal(x, r)) for (x, _), r in zip(b.epoch(1), reference, strict=True)]
    assert all(equal and address in allocated for address, equal in addresses), (addresses, allocated)
    assert len(allocated) <= 3 < len(reference)


def test_cpu_batch_memory_outlives_the_epoch_and_its_short_last_batch(allocated):
    """The next epoch writes into the float memory of the last one (no fresh pages per epoch);
    a short last batch takes fresh memory and leaves the full batches' arrays to the next epoch."""
    pixels = np.random.default_rng(0).integers(0, 256, (13, 8, 8, 3), np.uint8)

    def batches():
        return ArrayBatches(pixels, np.arange(13), 4, torch.device("cpu"), [0.5] * 3, [0.25] * 3,
                            shuffle=True, seed=1, **batch_augment(6, 8, mirror=True))

    b = batches()
    assert [len(x) for x, _ in b.epoch(0)] == [4, 4, 4, 1]
    first = len(allocated)
    assert 1 <= first <= 3
    again = [(x.data_ptr(), x.clone()) for x, _ in b.epoch(1)]
    assert len(allocated) == first, "epoch 1 took fresh arrays"
    assert all(address in allocated for address, _ in again[:3])
    fresh = [x for x, _ in batches().epoch(1)]  # the same epoch from a new loader, fresh memory
    assert all(torch.equal(x, y) for (_, x), y in zip(again, fresh, strict=True))


def grid_image(n: int, side: int = 64) -> torch.Tensor:
    """n copies of an (H,W,C) image whose pixel (r, c) holds r * side + c, in 2 channels."""
    values = torch.arange(side * side, dtype=torch.float32).view(1, side, side, 1)
    return values.repeat(n, 1, 1, 2)


def test_integer_crop_is_identity_at_full_size_and_mirrors_exactly():
    x = grid_image(64)
    assert torch.equal(random_crop_flip(x, torch.Generator().manual_seed(0), 64, 64), x)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), 64, 64, mirror=True)
    flipped = (out == x.flip(2)).flatten(1).all(1)
    assert ((out == x).flatten(1).all(1) ^ flipped).all()  # each image one or the other
    assert 10 < flipped.sum() < 54


def test_integer_crop_takes_one_window_scaled_back_by_nearest_pixel():
    out = random_crop_flip(grid_image(16), torch.Generator().manual_seed(3), 32, 32)
    assert out.shape == (16, 64, 64, 2)
    rows, cols = out[..., 0] // 64, out[..., 0] % 64
    for r, c in zip(rows, cols):
        assert r[:, 0].unique().numel() == 32 and c[0].unique().numel() == 32
        assert (r[:, 0].diff() >= 0).all() and r[-1, 0] - r[0, 0] == 31  # one window, in order
        assert (c[0].diff() >= 0).all() and c[0, -1] - c[0, 0] == 31
    assert rows[:, 0, 0].unique().numel() > 4 and cols[:, 0, 0].unique().numel() > 4  # they move


def test_integer_crop_shards_like_the_whole_batch():
    x = grid_image(8)
    whole = random_crop_flip(x, torch.Generator().manual_seed(5), 40, 64, mirror=True)
    for rank in range(2):
        part = random_crop_flip(x[rank::2], torch.Generator().manual_seed(5), 40, 64,
                                mirror=True, shard=(rank, 2))
        assert torch.equal(part, whole[rank::2])


@pytest.mark.parametrize("kind", ["tensor", "memmap"])
def test_integer_crop_of_picked_images_equals_the_crop_of_the_copied_batch(kind, tmp_path):
    """With idx the crop takes the batch's rows from all the images (a tensor, or the cache's
    numpy memory-map): the same pixels as cropping images[idx], also for one rank's share."""
    images = torch.randint(0, 256, (50, 64, 64, 3), dtype=torch.uint8)
    source = images
    if kind == "memmap":
        np.save(tmp_path / "cache.npy", images.numpy())
        source = np.load(tmp_path / "cache.npy", mmap_mode="r")
    idx = torch.randperm(50, generator=torch.Generator().manual_seed(1))[:16]
    for rank, world in ((0, 1), (1, 2)):
        expected = random_crop_flip(images[idx], torch.Generator().manual_seed(7), 40, 64,
                                    mirror=True, shard=(rank, world))
        got = random_crop_flip(source, torch.Generator().manual_seed(7), 40, 64, mirror=True,
                               shard=(rank, world), idx=idx)
        assert got.shape == (16, 64, 64, 3) and torch.equal(got, expected)


def test_the_warp_runs_only_when_rotation_is_asked_for():
    assert batch_augment(56, 64, 0, mirror=True)["pixel_augment"].func is random_crop_flip
    assert batch_augment(24, 28, 15)["augment"].func is random_crop_rotate
