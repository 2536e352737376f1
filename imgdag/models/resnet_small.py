"""ResNet-18 for 64x64 inputs (Tiny ImageNet), from torchvision's resnet18.

Stems:
- `imagenet`: torchvision's own conv 7x7/2 + max-pool 3/2 (as in the PyTorch Tiny-ImageNet blog);
  the adaptive average pool lets 64 px through (layer4 is 2x2).
- `small`: conv 3x3 stride 1 and no max-pool, keeping 4x the resolution (layer4 is 8x8).
"""
from torch import nn
from torchvision.models import resnet18

from imgdag.model_registry import STEMS


def resnet18_64px(num_classes: int, stem: str = "imagenet") -> nn.Module:
    """torchvision ResNet-18 (random weights) with the `imagenet` or `small` stem."""
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; expected one of {STEMS}")
    model = resnet18(weights=None, num_classes=num_classes)
    if stem == "small":
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    return model
