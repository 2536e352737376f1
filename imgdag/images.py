"""uint8 image tensors and their normalisation, shared by training, evaluation and feature
extraction."""
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def chw_tensor(pixels: np.ndarray) -> torch.Tensor:
    """A contiguous uint8 (C, H, W) tensor of an (H, W, C) array (as imgdag.codec returns)."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


class PixelNormalizer:
    """uint8 (N, C, H, W) -> float (x / 255 - mean) / std per channel, with mean and std kept on
    `device`: torchvision's arithmetic (`ToTensor`'s / 255, then `Normalize`) to the bit."""

    def __init__(self, mean, std, device: torch.device):
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self._mean_chw = np.asarray(mean, np.float32).reshape(-1, 1, 1)
        self._std_chw = np.asarray(std, np.float32).reshape(-1, 1, 1)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        # in place: one float tensor per batch, not four (on a CPU the allocations cost most)
        return pixels.float().div_(255).sub_(self.mean).div_(self.std)

    def image_into(self, pixels: np.ndarray, out: np.ndarray) -> None:
        """The same of one uint8 (H, W, C) image, written into float32 (C, H, W) `out` by numpy
        (the same bits; it releases the GIL, and one image stays in the CPU's cache: about 5x
        a whole batch's speed per image)."""
        np.copyto(out, pixels.transpose(2, 0, 1), casting="unsafe")
        out /= np.float32(255)
        out -= self._mean_chw
        out /= self._std_chw


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (N, 3, H, W) -> float normalised with ImageNet's mean and std."""
    return PixelNormalizer(IMAGENET_MEAN, IMAGENET_STD, images.device)(images)
