"""RecordDataset over a .rec, and BatchAugment's crops, mirrors and rotations on whole batches."""
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from imgdag.errors import DataError
from imgdag.formats.rec_dataset import BatchAugment, RecordDataset
from imgdag.formats.recordio import IRHeader, RecordWriter, pack_record


def png(pixels):
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def rec(tmp_path):
    """Four 6x5 RGB records with labels 0..3 (record 2 also with labels [2, 0.5])."""
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (6, 5, 3), dtype=np.uint8) for _ in range(4)]
    with RecordWriter(tmp_path / "d.rec", tmp_path / "d.idx") as writer:
        for i, pixels in enumerate(images):
            labels = [2, 0.5] if i == 2 else None
            writer.write(i, pack_record(IRHeader(0, float(i), i, 0), labels, png(pixels)))
    return tmp_path / "d.rec", images


def test_record_dataset_decodes_images_and_labels(rec):
    path, images = rec
    data = RecordDataset(path)
    assert len(data) == 4
    image, target = data[1]
    assert image.dtype == torch.uint8 and image.shape == (3, 6, 5)
    assert torch.equal(image, torch.from_numpy(images[1]).permute(2, 0, 1))
    assert target.dtype == torch.int64 and target.item() == 1
    assert RecordDataset(path, multi_label=True)[2][1].tolist() == [2.0, 0.5]
    gray, _ = RecordDataset(path, channels=1, transform=lambda x: x[:, :2])[0]
    assert gray.shape == (1, 2, 5)


def test_record_dataset_in_dataloader_workers(rec):
    path, images = rec
    loader = DataLoader(RecordDataset(path), batch_size=2, num_workers=2)
    batches = list(loader)
    assert torch.equal(batches[1][0][1], torch.from_numpy(images[3]).permute(2, 0, 1))
    assert [t.tolist() for _, t in batches] == [[0, 1], [2, 3]]


def test_record_dataset_names_the_record_of_a_bad_image(tmp_path):
    with RecordWriter(tmp_path / "b.rec", tmp_path / "b.idx") as writer:
        writer.write(5, pack_record(IRHeader(0, 0.0, 5, 0), None, b"junk"))
    with pytest.raises(DataError, match=r"b\.rec: record 5: not a readable image"):
        RecordDataset(tmp_path / "b.rec")[0]


@pytest.fixture
def batch():
    return torch.randint(0, 256, (6, 3, 10, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def offsets_matching(output, image, crop_h, crop_w):
    """The (top, left) windows of `image` equal to `output`."""
    h, w = image.shape[-2:]
    return [
        (top, left)
        for top in range(h - crop_h + 1)
        for left in range(w - crop_w + 1)
        if torch.allclose(output, image[:, top : top + crop_h, left : left + crop_w].float(), atol=1e-3)
    ]


def test_random_crop_is_a_whole_pixel_window_that_varies(batch):
    out = BatchAugment((6, 8), rand_mirror=False)(batch, torch.Generator().manual_seed(1))
    assert out.dtype == torch.float32 and out.shape == (6, 3, 6, 8)
    found = [offsets_matching(out[i], batch[i], 6, 8) for i in range(6)]
    assert all(len(f) == 1 for f in found)
    assert len({f[0] for f in found}) > 1


def test_center_crop_and_mirror(batch):
    augment = BatchAugment((6, 8))
    assert torch.allclose(augment.center(batch), batch[:, :, 2:8, 2:10].float(), atol=1e-3)
    out = BatchAugment((10, 12), rand_crop=False)(batch, torch.Generator().manual_seed(2))
    mirrored = [torch.allclose(out[i], batch[i].flip(-1).float(), atol=1e-3) for i in range(6)]
    kept = [torch.allclose(out[i], batch[i].float(), atol=1e-3) for i in range(6)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True)) and any(mirrored) and any(kept)


def test_rotation_by_a_quarter_turn_is_rot90_and_small_rotations_stay_close():
    square = torch.arange(25.0).reshape(1, 1, 5, 5)
    augment = BatchAugment(5, rand_crop=False, rand_mirror=False, max_rotate_degrees=90)
    zero = torch.zeros(1, dtype=torch.long)
    quarter = augment._sample(square, zero, zero, torch.zeros(1, dtype=torch.bool), torch.tensor([90.0]))
    assert torch.allclose(quarter, torch.rot90(square, 1, (2, 3)), atol=1e-4)

    smooth = torch.linspace(0, 255, 32).expand(4, 1, 32, 32).contiguous()
    small = BatchAugment(32, rand_crop=False, rand_mirror=False, max_rotate_degrees=5, padding_mode="border")
    out = small(smooth, torch.Generator().manual_seed(3))
    assert not torch.allclose(out, smooth, atol=1e-2)
    assert (out - smooth).abs().mean() < 12


def test_crop_larger_than_the_images_is_an_error(batch):
    with pytest.raises(ValueError, match="larger than the batch's images"):
        BatchAugment(11)(batch)
