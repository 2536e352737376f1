"""Image decoding and ImageNet normalisation shared by evaluation and feature extraction."""
import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from imgdag.layouts.images import load_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_rgb(path) -> torch.Tensor:
    """Decode an image file (any mode Pillow reads) to uint8 RGB (3, H, W)."""
    return torch.from_numpy(np.array(load_rgb(path))).permute(2, 0, 1)


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (N, 3, H, W) -> float, scaled to [0, 1], minus ImageNet mean, over std."""
    return TF.normalize(images.float() / 255, IMAGENET_MEAN, IMAGENET_STD)
