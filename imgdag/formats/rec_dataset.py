"""Training input from RecordIO: a torch Dataset of decoded records, and batch augmentation.

`RecordDataset` decodes one record per item (in DataLoader workers). `BatchAugment` then does
what MXNet's ImageRecordIter does per image (rand_crop, rand_mirror, max_rotate_angle) to a
whole batch at once, with one affine_grid + grid_sample, on whatever device the batch is on.
"""
import math

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from imgdag.errors import DataError
from imgdag.formats.recordio import RecordReader, decode_image


class RecordDataset(Dataset):
    """Items (image, target) of the records of a `.rec`, in `.idx` order.

    image: uint8 tensor (C, H, W), decoded with `channels` (1 or 3; None keeps what is
    stored), then passed through `transform` when given. target: the class index as an int64
    scalar, or with multi_label=True all labels as a float32 vector.
    """

    def __init__(self, rec_path, idx_path=None, transform=None, channels=3, multi_label=False):
        self.reader = RecordReader(rec_path, idx_path)
        self.transform, self.channels, self.multi_label = transform, channels, multi_label

    def __len__(self):
        return len(self.reader)

    def __getitem__(self, i):
        record = self.reader[i]
        try:
            pixels = decode_image(record.image, self.channels)
        except ValueError as e:
            raise DataError(self.reader.rec_path, f"record {record.header.id}: {e}") from None
        image = torch.from_numpy(pixels).permute(2, 0, 1)
        if self.transform is not None:
            image = self.transform(image)
        labels = torch.from_numpy(record.labels)
        return image, labels if self.multi_label else labels[0].long()


class BatchAugment:
    """Random crop, mirror and rotation of a whole (N, C, H, W) batch, as ImageRecordIter's
    rand_crop, rand_mirror and max_rotate_angle.

    Each image gets its own crop offset (whole pixels), mirror coin and angle, uniform in
    [-max_rotate_degrees, max_rotate_degrees] about the crop's centre; areas rotated in from
    outside the image are filled per `padding_mode` (grid_sample's: zeros, border,
    reflection). Returns float32 (uint8 input keeps its 0-255 scale) of size `crop` (h, w).
    Without rotation the crop is a pixel copy (up to float rounding). `center(batch)` is the
    evaluation path: the central crop, nothing random.
    """

    def __init__(self, crop, rand_crop=True, rand_mirror=True, max_rotate_degrees=0.0, padding_mode="zeros"):
        self.crop = (crop, crop) if isinstance(crop, int) else tuple(crop)
        self.rand_crop, self.rand_mirror = rand_crop, rand_mirror
        self.max_rotate_degrees, self.padding_mode = max_rotate_degrees, padding_mode

    def __call__(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, (height, width), (crop_h, crop_w) = batch.shape[0], batch.shape[-2:], self.crop
        self._check_size(height, width)
        if self.rand_crop:
            top = torch.randint(0, height - crop_h + 1, (n,), generator=generator)
            left = torch.randint(0, width - crop_w + 1, (n,), generator=generator)
        else:
            top, left = self._center_offsets(n, height, width)
        mirror = torch.rand(n, generator=generator) < 0.5
        if not self.rand_mirror:
            mirror[:] = False
        degrees = self.max_rotate_degrees * (2 * torch.rand(n, generator=generator, dtype=torch.float64) - 1)
        return self._sample(batch, top, left, mirror, degrees)

    def center(self, batch: torch.Tensor) -> torch.Tensor:
        """The central crop of every image, as float32."""
        n, (height, width) = batch.shape[0], batch.shape[-2:]
        self._check_size(height, width)
        top, left = self._center_offsets(n, height, width)
        return self._sample(batch, top, left, torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.float64))

    def _center_offsets(self, n, height, width):
        crop_h, crop_w = self.crop
        return torch.full((n,), (height - crop_h) // 2), torch.full((n,), (width - crop_w) // 2)

    def _check_size(self, height, width):
        if height < self.crop[0] or width < self.crop[1]:
            raise ValueError(f"crop {self.crop} is larger than the batch's images ({height}, {width})")

    def _sample(self, batch, top, left, mirror, degrees):
        """grid_sample of each image's crop window at (top, left), mirrored and rotated.

        affine_grid maps output coordinates (normalised to [-1, 1]) to input ones. In pixel
        units about the centres: input = R(angle) . M(mirror) . output + shift, so in
        normalised units theta = D_in^-1 R M D_out with D = diag(w/2, h/2), and the shift of
        the crop centre from the image centre is (2 left + crop_w - W) / W (and likewise y).
        """
        (height, width), (crop_h, crop_w) = batch.shape[-2:], self.crop
        angle = degrees.double() * (math.pi / 180)
        cos, sin = torch.cos(angle), torch.sin(angle)
        flip = 1.0 - 2.0 * mirror.double()
        theta = torch.zeros(batch.shape[0], 2, 3, dtype=torch.float64)
        theta[:, 0, 0] = cos * flip * crop_w / width
        theta[:, 0, 1] = -sin * crop_h / width
        theta[:, 1, 0] = sin * flip * crop_w / height
        theta[:, 1, 1] = cos * crop_h / height
        theta[:, 0, 2] = (2 * left.double() + crop_w - width) / width
        theta[:, 1, 2] = (2 * top.double() + crop_h - height) / height
        images = batch.float()
        theta = theta.to(device=images.device, dtype=images.dtype)
        grid = F.affine_grid(theta, [batch.shape[0], batch.shape[1], crop_h, crop_w], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=False)
