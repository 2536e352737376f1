"""Demo MNIST: scikit-learn's bundled handwritten digits, up-sampled to 28x28, as idx .gz files.

The 1,797 real 8x8 digits are split by sample (not by variant) into train and test, then
each is drawn several times with a small random scale, shift and stroke-weight change, so the
demo is learnable and the test digits are writers' samples the model never saw.
"""
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from imgdag.faults import fault_point
from imgdag.layouts.mnist_idx import SPLIT_FILES, write_idx


def _render(digits: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
    """Up-sample 8x8 digits (0..16) to 28x28 uint8 with random affine jitter, `copies` each."""
    x = torch.from_numpy(np.repeat(digits, copies, axis=0)).float().div(16).unsqueeze(1)
    n = len(x)
    scale = torch.from_numpy(rng.uniform(0.95, 1.25, n)).float()  # >1 shrinks the digit
    shift = torch.from_numpy(rng.uniform(-0.12, 0.12, (n, 2))).float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    # MNIST digits sit in a 20x20 box inside the 28x28 frame: pad the 8x8 source accordingly
    x = F.pad(x, (2, 2, 2, 2))
    grid = F.affine_grid(theta, (n, 1, 28, 28), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    gamma = torch.from_numpy(rng.uniform(0.6, 1.2, (n, 1, 1, 1))).float()
    out = out.clamp(0, 1).pow(gamma)
    return (out.squeeze(1) * 255).round().to(torch.uint8).numpy()


def make_demo_mnist(out_dir, seed: int = 0, train_copies: int = 3, test_copies: int = 1,
                    test_fraction: float = 0.35) -> dict:
    """Write the four MNIST idx .gz files into out_dir; return the image counts per split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.target))
    n_test = int(len(order) * test_fraction)
    splits = {"test": (order[:n_test], test_copies), "train": (order[n_test:], train_copies)}
    counts = {}
    for split, (idx, copies) in splits.items():
        images = _render(digits.images[idx], copies, rng)
        labels = np.repeat(digits.target[idx], copies).astype(np.uint8)
        perm = rng.permutation(len(labels))
        images_name, labels_name = SPLIT_FILES[split]
        write_idx(Path(out_dir) / images_name, images[perm])
        fault_point("demo")
        write_idx(Path(out_dir) / labels_name, labels[perm])
        counts[split] = len(labels)
    return counts
