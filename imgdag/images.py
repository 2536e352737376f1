"""uint8 image tensors and ImageNet normalisation shared by evaluation and feature extraction."""
import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def chw_tensor(pixels: np.ndarray) -> torch.Tensor:
    """A contiguous uint8 (C, H, W) tensor of an (H, W, C) array (as imgdag.codec returns)."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (N, 3, H, W) -> float, scaled to [0, 1], minus ImageNet mean, over std."""
    return TF.normalize(images.float() / 255, IMAGENET_MEAN, IMAGENET_STD)
