"""Evaluation figures: confusion matrix, per-class accuracy, forward latency."""
import csv
import statistics
import time

import torch

from imgdag.atomic import atomic_open
from imgdag.engine import autocast


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int):
    """Counts[true, predicted] as a (C, C) int64 tensor."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes ** 2).view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor, classes: list[str]) -> dict[str, float]:
    """Recall of each class (diagonal over row sums); classes with no samples are left out."""
    totals = confusion.sum(dim=1)
    return {name: round(float(confusion[i, i]) / int(totals[i]), 6)
            for i, name in enumerate(classes) if totals[i] > 0}


def write_confusion_csv(path, confusion: torch.Tensor, classes: list[str]) -> None:
    """Rows are true classes, columns predicted classes, as a labelled CSV."""
    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true\\predicted", *classes])
        for name, row in zip(classes, confusion.tolist()):
            writer.writerow([name, *row])


def write_classified_csv(path, labels: torch.Tensor, predictions: torch.Tensor,
                         classes: list[str]) -> None:
    """One row per image: actual and predicted class name (what DVC's confusion template draws)."""
    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["actual", "predicted"])
        writer.writerows((classes[a], classes[p]) for a, p in zip(labels.tolist(), predictions.tolist()))


@torch.no_grad()
def forward_latency_ms(model, input_shape, device, repeats: int = 30, warmup: int = 5) -> float:
    """Median wall time in ms of one forward pass of a random batch of `input_shape`."""
    model.eval()
    x = torch.randn(*input_shape, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with autocast(device):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def device_name(device) -> str:
    """A human name for the device: the GPU model, or the CPU and its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"
