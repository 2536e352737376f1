"""Transfer learning on frozen torchvision backbones: cached features, a small head, Kaggle output.

A backbone is a torchvision classification model whose last Linear layer is replaced by
identity, frozen, with weights from a LOCAL torchvision `.pth` file (nothing is downloaded;
with no file it says so loudly and uses seeded random weights). Features are computed once
per cache key = sha256(backbone name, weight file sha256 or "random", image size, ordered
image list), so changing only head parameters never recomputes them.
"""
import csv
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from imgdag import codec
from imgdag.atomic import atomic_open, atomic_torch_save
from imgdag.errors import DataError
from imgdag.images import ImageLoader, chw_tensor, imagenet_normalize
from imgdag.models import load_weights
from imgdag.textfiles import csv_rows, read_text
from imgdag.weightfiles import check_weights, load_torch

BACKBONE_SIZES = {"resnet152": 224, "inception_v3": 299}  # others: 224
# inception_v3: as torchvision builds it for its pretrained weights (which expect transform_input)
BUILD_ARGS = {"inception_v3": {"aux_logits": False, "init_weights": False, "transform_input": True}}
SKIP_KEYS = {"inception_v3": ("AuxLogits.",)}  # torchvision's inception file holds the aux head


@dataclass
class Backbone:
    """A frozen feature extractor and what identifies its features."""

    name: str
    model: nn.Module
    size: int  # input side in pixels
    features: int  # feature vector length
    weights_sha256: str  # sha256 of the weight file, or "random"

    @property
    def pretrained(self) -> bool:
        return self.weights_sha256 != "random"


def _weights_sha256(name: str, weights) -> str:
    """sha256 of the weight file, checked against a published one (imgdag.weightfiles); "random",
    with a loud warning, when there is none."""
    if weights is not None and Path(weights).is_file():
        return check_weights(weights)["sha256"]
    warnings.warn(
        f"NO WEIGHT FILE for backbone {name} ({weights or 'none given'}): using RANDOM weights, "
        "features are not pretrained",
        stacklevel=3,
    )
    return "random"


def _build_backbone(name: str, weights, weights_sha256: str, size: int, device) -> Backbone:
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise DataError("--backbone", f"{name!r} is not a torchvision classification model "
                                      "(torchvision.models.list_models() names them)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random weights are the same every time, as their cache key says
        model = torchvision.models.get_model(name, weights=None, **BUILD_ARGS.get(name, {}))
    if weights_sha256 != "random":
        load_weights(model, weights, skip=SKIP_KEYS.get(name, ()))
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{name} has no Linear classifier to remove")
    parent, _, child = linears[-1].rpartition(".")
    features = model.get_submodule(linears[-1]).in_features
    setattr(model.get_submodule(parent), child, nn.Identity())
    model.requires_grad_(False).eval().to(device)
    if torch.device(device).type == "cuda":
        model.to(memory_format=torch.channels_last)
    return Backbone(name, model, size, features, weights_sha256)


class ResizedImages(Dataset):
    """uint8 RGB images resized (aspect not kept) to size x size."""

    def __init__(self, paths, size: int):
        self.paths, self.size = list(paths), size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        pixels = codec.read_rgb_file(self.paths[i], min_side=self.size)
        return chw_tensor(codec.resize(pixels, self.size, self.size))


@torch.no_grad()
def extract_features(backbone: Backbone, paths, batch_size=32, device="cpu", num_workers=0) -> np.ndarray:
    """Backbone features of each image file, in order: float32 (len(paths), backbone.features)."""
    device = torch.device(device)
    loader = ImageLoader(
        ResizedImages(paths, backbone.size),
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    out = []
    for images in tqdm(loader, desc=f"{backbone.name} features", unit="batch"):
        x = imagenet_normalize(images.to(device, non_blocking=True))
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(backbone.model(x).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, backbone.features), np.float32)


def feature_cache_key(name: str, weights_sha256: str, size: int, images) -> str:
    """sha256 of (backbone name, weight file sha256 or "random", image size, ordered image list)."""
    return hashlib.sha256(json.dumps([name, weights_sha256, size, list(images)]).encode()).hexdigest()


def cached_features(
    name: str, weights, root, images, cache_dir, size=None, batch_size=32, device="cpu", num_workers=0
) -> tuple[np.ndarray, list[str], Path]:
    """Features of `root/<image>` for each relative image name, in order, computed once and
    kept in `cache_dir` under their cache key. Returns (features float32, ids, cache file)."""
    images, size = list(images), size or BACKBONE_SIZES.get(name, 224)
    weights_sha256 = _weights_sha256(name, weights)
    key = feature_cache_key(name, weights_sha256, size, images)
    path = Path(cache_dir) / f"{name}-{size}px-{key[:16]}.pt"
    if path.exists():
        saved = read_features_file(path)
        if saved["key"] == key:
            return saved["features"].numpy(), saved["ids"], path
    backbone = _build_backbone(name, weights, weights_sha256, size, device)
    features = extract_features(backbone, [Path(root) / i for i in images], batch_size, device, num_workers)
    atomic_torch_save({"key": key, "backbone": name, "weights_sha256": weights_sha256, "size": size,
                       "ids": images, "features": torch.from_numpy(features)}, path)
    return features, images, path


FEATURES_KEYS = ("key", "backbone", "weights_sha256", "size", "ids", "features")


def read_features_file(path, **kwargs) -> dict:
    """A features file `cached_features` wrote (FEATURES_KEYS); DataError naming it otherwise."""
    saved = load_torch(path, "expected a features file of extract_features.py: delete it to extract "
                             "the features again", **kwargs)
    if not isinstance(saved, dict) or not set(FEATURES_KEYS) <= set(saved) \
            or not isinstance(saved["features"], torch.Tensor) or saved["features"].ndim != 2:
        raise DataError(path, f"expected a features file of extract_features.py (a dict of "
                              f"{', '.join(FEATURES_KEYS)}): delete it to extract the features again")
    return saved


def transfer_head(in_features: int, num_classes: int, hidden: int = 256, dropout: float = 0.7) -> nn.Sequential:
    """The classifier trained on cached features: Linear-ReLU-Dropout-Linear."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes))


def read_submission_columns(path) -> list[str]:
    """The class columns of a Kaggle `sample_submission.csv` header, after `id`, in order."""
    header = next(iter(csv_rows(read_text(path, "a Kaggle sample_submission.csv"))), [])
    if len(header) < 3 or header[0] != "id" or len(set(header)) != len(header):
        raise DataError(path, "expected a header 'id,<class>,<class>,...' with distinct class names")
    return header[1:]


def write_kaggle_submission(path, ids, probs, class_names, columns=None) -> None:
    """Write `id,<columns...>` rows of probabilities, atomically.

    `probs[i, j]` is the probability of `class_names[j]` for `ids[i]`; `columns` is the class
    order of the sample submission's header (default: `class_names`). Rows must sum to 1."""
    probs = np.asarray(probs, dtype=np.float64)
    columns = list(class_names) if columns is None else list(columns)
    if sorted(columns) != sorted(class_names) or len(set(columns)) != len(columns):
        raise ValueError("submission columns and class names must be the same distinct classes")
    if probs.shape != (len(ids), len(class_names)):
        raise ValueError(f"probs has shape {probs.shape}, expected ({len(ids)}, {len(class_names)})")
    if len(set(ids)) != len(ids):
        raise ValueError("submission ids must be distinct")
    if not np.isfinite(probs).all() or (probs < 0).any() or not np.allclose(probs.sum(1), 1, rtol=0, atol=1e-5):
        raise ValueError("each row of probs must be non-negative and sum to 1")
    order = [list(class_names).index(c) for c in columns]
    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *columns])
        for i, row in zip(ids, probs[:, order]):
            writer.writerow([i, *(f"{p:.10g}" for p in row)])


def multiclass_log_loss(y_true, probs) -> float:
    """Mean -log p(true class), probabilities clipped to [eps, 1-eps] (as sklearn's log_loss)."""
    y = np.asarray(y_true)
    p = np.asarray(probs)
    p = p if p.dtype in (np.float32, np.float64) else p.astype(np.float64)
    if p.ndim != 2 or y.shape != (len(p),):
        raise ValueError(f"expected labels (n,) and probs (n, classes), got {y.shape} and {p.shape}")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must be class indices in [0, {p.shape[1]})")
    if (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must lie in [0, 1]")
    eps = np.finfo(p.dtype).eps
    return float(-np.log(np.clip(p[np.arange(len(y)), y], eps, 1 - eps)).mean())
