"""1-, 5- and 10-crop evaluation, top-1 / top-5 (the AlexNet paper's test protocol).

Each image is resized so its shorter side is `resize` and the central `resize` x `resize`
square is kept, by imgdag.codec at decode time (`ImageFiles`; the loader's job, so there is one
resize + centre crop in the project); then, on whole batches, the crops are cut: 1-crop
is the centre, 5-crop the four corners and the centre, 10-crop those five and the five of
the horizontally flipped image. The model's softmax is averaged over the crops.
A 10-crop run also gives the 5-crop (its first five crops) and 1-crop (the centre) results,
so evaluating (1, 5, 10) costs 10 forward passes per image, not 16.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from imgdag import codec
from imgdag.images import chw_tensor, imagenet_normalize
from imgdag.models.caffe_alexnet import INPUT_SIZE, caffe_normalize

CROP_MODES = (1, 5, 10)


@dataclass(frozen=True)
class CropPreprocess:
    """How a model sees an image: centre square of side `resize`, `crop` px crops, `normalize`."""

    resize: int
    crop: int
    normalize: Callable[[torch.Tensor], torch.Tensor]


TORCHVISION = CropPreprocess(256, 224, imagenet_normalize)  # RGB, ImageNet mean/std
# BGR, 0-255 minus mean; Caffe's own tools squash to 256x256 instead of keeping the aspect ratio
CAFFE = CropPreprocess(256, INPUT_SIZE, caffe_normalize)


def multi_crops(images: torch.Tensor, size: int, n: int) -> torch.Tensor:
    """(N, C, H, W) -> (n, N, C, size, size): n=1 centre; 5 corners tl, tr, bl, br and centre;
    10 those five then the five of the horizontally flipped images."""
    if n == 1:
        return TF.center_crop(images, [size, size])[None]
    if n == 5:
        return torch.stack(TF.five_crop(images, [size, size]))
    if n == 10:
        return torch.stack(TF.ten_crop(images, [size, size]))
    raise ValueError(f"crop count must be one of {CROP_MODES}, not {n}")


class ImageFiles(Dataset):
    """Decoded RGB uint8 images (3, size, size) as centre squares, with their labels."""

    def __init__(self, paths, labels, size: int):
        self.paths, self.labels, self.size = [Path(p) for p in paths], list(labels), size
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels")

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        pixels = codec.read_rgb_file(self.paths[i], min_side=self.size)
        return chw_tensor(codec.resize_center_crop(pixels, self.size, self.size)), self.labels[i]


def _crop_probs(model, images, preprocess, n, device) -> torch.Tensor:
    """Softmax over classes for each of the n crops: (n, N, classes), float32."""
    if images.shape[-2:] != (preprocess.resize, preprocess.resize):
        raise ValueError(f"images are {tuple(images.shape[-2:])}, not the {preprocess.resize} px squares "
                         "this preprocessing crops from (decode them with ImageFiles)")
    crops = multi_crops(images.to(device, non_blocking=True), preprocess.crop, n)
    x = preprocess.normalize(crops.flatten(0, 1))
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(x)
    return logits.float().softmax(-1).view(n, len(images), -1)


@torch.no_grad()
def evaluate_crops(model, loader, crops=CROP_MODES, preprocess: CropPreprocess = TORCHVISION, device="cpu") -> dict:
    """Top-1 / top-5 accuracy and error of `model` for each crop mode in `crops`.

    `loader` yields (uint8 RGB images (N, 3, resize, resize), labels (N,)), the centre squares
    `ImageFiles` decodes (other sizes raise ValueError). Returns
    {"images": n, "metrics": {"10-crop": {"top1_accuracy", "top5_accuracy", "top1_error",
    "top5_error", "top1_correct", "top5_correct"}, ...},
    "predictions": {"10-crop": {"classes": (n, 5) int64, "probs": (n, 5) float32}, ...},
    "labels": (n,) int64}; predictions are best first, probs the crop-averaged softmax."""
    if not crops or any(n not in CROP_MODES for n in crops):
        raise ValueError(f"crops must be drawn from {CROP_MODES}, not {crops}")
    device = torch.device(device)
    model = model.to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    computed = max(crops)
    # which of the computed crops each mode averages over (ten_crop starts with five_crop's)
    picks = {1: [4] if computed > 1 else [0], 5: list(range(5)), 10: list(range(10))}
    classes = {n: [] for n in crops}
    probs = {n: [] for n in crops}
    labels = []
    for images, batch_labels in tqdm(loader, desc=f"{'/'.join(map(str, crops))}-crop eval", unit="batch"):
        crop_probs = _crop_probs(model, images, preprocess, computed, device)
        for n in crops:
            top = crop_probs[picks[n]].mean(0).topk(min(5, crop_probs.shape[-1]), dim=-1)
            classes[n].append(top.indices.cpu())
            probs[n].append(top.values.cpu())
        labels.append(torch.as_tensor(batch_labels, dtype=torch.int64))
    if not labels:
        raise ValueError("the loader gave no images")
    labels = torch.cat(labels)
    result = {"images": len(labels), "metrics": {}, "predictions": {}, "labels": labels.numpy()}
    for n in crops:
        pred = torch.cat(classes[n])
        top1, top5 = int((pred[:, 0] == labels).sum()), int((pred == labels[:, None]).any(1).sum())
        result["metrics"][f"{n}-crop"] = {
            "top1_accuracy": top1 / len(labels),
            "top5_accuracy": top5 / len(labels),
            "top1_error": 1 - top1 / len(labels),
            "top5_error": 1 - top5 / len(labels),
            "top1_correct": top1,
            "top5_correct": top5,
        }
        result["predictions"][f"{n}-crop"] = {"classes": pred.numpy(), "probs": torch.cat(probs[n]).numpy()}
    return result
