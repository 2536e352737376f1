"""The Caffe/Toronto AlexNet (`bvlc_alexnet.npy`) as a PyTorch module.

Architecture of Caffe's `bvlc_alexnet` (as in the Toronto `myalexnet` TensorFlow port):
227 px input; conv1 11x11/4 -> ReLU -> LRN -> max-pool 3/2; conv2 5x5 pad 2 groups 2 ->
ReLU -> LRN -> max-pool 3/2; conv3 3x3 pad 1; conv4, conv5 3x3 pad 1 groups 2; max-pool 3/2;
fc6 9216->4096, fc7 4096->4096 (ReLU, dropout 0.5), fc8 4096->classes.

LRN: Caffe's `local_size 5, alpha 1e-4, beta 0.75, k 1` divides alpha by the size, as
PyTorch's `LocalResponseNorm(5, 1e-4, 0.75, 1)` does; TensorFlow's
`local_response_normalization(depth_radius=2, alpha=2e-05, beta=0.75, bias=1.0)` is the
same function with alpha already divided by 5.

Input: BGR, float, 0-255 scale minus the per-channel ImageNet mean `CAFFE_BGR_MEAN`
(the channel means of Caffe's `ilsvrc_2012_mean.npy`), 227x227.

The `.npy` holds `{layer: [W, b]}` in TensorFlow layout: conv W is (kh, kw, in/groups, out),
fc W is (in, out), and fc6's 9216 inputs are the pool5 output flattened as (H, W, C).
"""
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imgdag.errors import DataError
from imgdag.weightfiles import load_pickled_npy

CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
INPUT_SIZE = 227

# layer -> expected W shape in TF layout; fc8's output size is the class count (None)
NPY_SHAPES = {
    "conv1": (11, 11, 3, 96),
    "conv2": (5, 5, 48, 256),
    "conv3": (3, 3, 256, 384),
    "conv4": (3, 3, 192, 384),
    "conv5": (3, 3, 192, 256),
    "fc6": (9216, 4096),
    "fc7": (4096, 4096),
    "fc8": (4096, None),
}
# layer -> its parameter prefix in CaffeAlexNet's state_dict
MODULE_NAMES = {
    "conv1": "features.0", "conv2": "features.4", "conv3": "features.8",
    "conv4": "features.10", "conv5": "features.12",
    "fc6": "classifier.0", "fc7": "classifier.3", "fc8": "classifier.6",
}


class CaffeAlexNet(nn.Module):
    """Caffe's bvlc_alexnet: grouped convolutions and LRN, 227 px BGR mean-subtracted input."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2, groups=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def caffe_normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (N, 3, H, W) -> float BGR minus `CAFFE_BGR_MEAN`, 0-255 scale."""
    mean = torch.tensor(CAFFE_BGR_MEAN, dtype=torch.float32, device=images.device)
    return images.flip(-3).float() - mean.view(3, 1, 1)


def state_dict_from_npy(path) -> tuple[dict, int]:
    """Read a `bvlc_alexnet.npy` and return (CaffeAlexNet state_dict, class count).

    The file is a pickle, read by an unpickler that builds only arrays and plain containers
    (imgdag.weightfiles). Raises DataError naming the file when it is not such a dict, its
    pickle names anything else, or a layer is missing, unexpected or misshapen."""
    path = Path(path)
    layers = load_pickled_npy(path, "use the published bvlc_alexnet.npy")
    layers = layers.item() if isinstance(layers, np.ndarray) and layers.shape == () else layers
    if not isinstance(layers, dict):
        raise DataError(path, f"expected a dict layer -> [W, b], found {type(layers).__name__}")
    if set(layers) != set(NPY_SHAPES):
        missing, extra = sorted(set(NPY_SHAPES) - set(layers)), sorted(set(layers) - set(NPY_SHAPES))
        raise DataError(path, f"expected layers {list(NPY_SHAPES)}; missing {missing}, unexpected {extra}")
    state = {}
    for name, w_shape in NPY_SHAPES.items():
        if not isinstance(layers[name], (list, tuple, np.ndarray)) or len(layers[name]) != 2:
            raise DataError(path, f"layer {name}: expected a pair [W, b]")
        w, b = (np.asarray(a, dtype=np.float32) for a in layers[name])
        if w_shape[-1] is None:
            num_classes = w.shape[1] if w.ndim == 2 else None
            w_shape = w_shape[:-1] + (num_classes,)
        if w.shape != w_shape or b.shape != (w_shape[-1],):
            raise DataError(
                path, f"layer {name}: expected W {w_shape} and b ({w_shape[-1]},), found W {w.shape} and b {b.shape}"
            )
        if name == "fc6":  # TF flattens pool5 as (H, W, C); PyTorch as (C, H, W)
            w = w.reshape(6, 6, 256, 4096).transpose(2, 0, 1, 3).reshape(9216, 4096)
        w = w.transpose(3, 2, 0, 1) if w.ndim == 4 else w.T
        state[f"{MODULE_NAMES[name]}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
        state[f"{MODULE_NAMES[name]}.bias"] = torch.from_numpy(b)
    return state, num_classes
