"""GPU readiness checked on CPU: the training and evaluation loops read their metrics from the
device once per epoch, not once per step, and the metrics equal a per-step computation."""
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from imgdag.augment import random_crop_rotate
from imgdag.batches import ArrayBatches
from imgdag.engine import evaluate, train_one_epoch
from imgdag.models.lenet import lenet5

SYNCS = ("item", "tolist", "cpu", "numpy", "__int__", "__float__", "__bool__", "__index__")


@pytest.fixture
def count_syncs(monkeypatch):
    """Counts every Tensor method that reads a value back to the host, and cuda.synchronize."""
    calls = []

    def counting(name, original):
        def wrapper(self, *args, **kwargs):
            calls.append(name)
            return original(self, *args, **kwargs)
        return wrapper

    for name in SYNCS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: calls.append("synchronize"))
    return calls


def batches(n: int) -> ArrayBatches:
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (n, 28, 28, 1), np.uint8))
    labels = rng.integers(0, 10, n)
    # a tensor of images is the resident path (as on CUDA); augmentation as in the recipe
    return ArrayBatches(images, labels, 16, torch.device("cpu"), [0.5], [0.25], shuffle=True,
                        augment=partial(random_crop_rotate, crop_min=24, crop_max=28,
                                        max_degrees=15))


def run_epoch(n: int):
    torch.manual_seed(0)
    model = lenet5()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return train_one_epoch(model, optimizer, None, batches(n).epoch(0), torch.device("cpu")), model


def test_host_reads_do_not_grow_with_the_steps(count_syncs):
    run_epoch(32)  # 2 steps
    two_steps = len(count_syncs)
    count_syncs.clear()
    run_epoch(128)  # 8 steps
    assert len(count_syncs) == two_steps <= 2, count_syncs
    count_syncs.clear()
    model = lenet5()
    evaluate(model, batches(32).epoch(0), torch.device("cpu"))
    two_steps = len(count_syncs)
    count_syncs.clear()
    evaluate(model, batches(128).epoch(0), torch.device("cpu"))
    assert len(count_syncs) == two_steps <= 2, count_syncs


def test_metrics_equal_the_per_step_computation():
    result, _ = run_epoch(100)  # a short last batch too
    torch.manual_seed(0)
    model = lenet5()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    total, correct, seen = 0.0, 0, 0
    for x, y in batches(100).epoch(0):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    assert result["count"] == seen == 100
    assert result["top1"] == correct / seen
    assert result["loss"] == pytest.approx(total / seen, rel=1e-6)
    evaluated = evaluate(model, batches(100).epoch(0), torch.device("cpu"))
    logits = torch.cat([model(x) for x, _ in batches(100).epoch(0)])
    labels = torch.cat([y for _, y in batches(100).epoch(0)])
    top5 = (logits.topk(5, 1).indices == labels[:, None]).any(1).float().mean().item()
    assert evaluated["top5"] == pytest.approx(top5)
    assert evaluated["top1"] == pytest.approx((logits.argmax(1) == labels).float().mean().item())


def test_a_long_epoch_prints_progress_where_bars_are_off(monkeypatch, capsys):
    import imgdag.engine
    monkeypatch.setenv("TQDM_DISABLE", "1")  # as the rules run the scripts
    monkeypatch.setattr(imgdag.engine, "PROGRESS_EVERY_S", 0.0)  # every batch counts as long
    model = lenet5()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    train_one_epoch(model, optimizer, None, imgdag.engine._Epoch(batches(64), 0),
                    torch.device("cpu"), desc="epoch 1/1")  # 4 steps, as fit() passes them
    lines = [line for line in capsys.readouterr().out.splitlines() if "batch" in line]
    assert [line.split("batch ")[1].split(",")[0] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    monkeypatch.setattr(imgdag.engine, "PROGRESS_EVERY_S", 3600.0)  # a short epoch: quiet
    run_epoch(64)
    assert "batch" not in capsys.readouterr().out
