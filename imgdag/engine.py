"""The one training engine every recipe uses (after torchvision's classification reference).

`train_one_epoch` and `evaluate` run one pass; `fit` adds the optimizer, the LR schedule, the
per-epoch log and the checkpoint contract:

- every `checkpoint_every` epochs (and after the last) `checkpoints/epoch_NNN.pt` and
  `checkpoints/last.pt` are written atomically, each a dict: model, optimizer, scheduler,
  epoch (epochs completed), params, history (without the wall-clock `seconds`, so the same
  run writes the same bytes); only the newest `keep_checkpoints` (default 2) epoch files are kept;
- the per-epoch log (`log_csv`, kept in git) holds no wall-clock time either: each epoch's
  seconds go to `times_csv` (epochs restored from a checkpoint have none), so a rerun with
  the same results leaves the log's bytes as they were;
- a rerun resumes from `last.pt` when its params equal the current ones (`checkpoint_every`
  and `keep_checkpoints` aside) and starts over otherwise, removing the other run's files.
  Epoch e is seeded from (seed, e) (`imgdag.seeds.epoch_seed`), so a resumed run ends with
  the same weights as an uninterrupted one. Resuming a finished run trains nothing and
  writes its log again (`dvc repro` deletes a stage's outputs, not its checkpoints).

Batches are any object with `len()` and `epoch(e)` yielding (inputs, labels) on the device.
Under torchrun the model is DDP-wrapped, each rank trains on its shard of every batch and the
logged metrics are over all ranks' samples; imgdag/distributed.py says how to launch.
"""
import csv
import math
import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from tqdm import tqdm

from imgdag.atomic import atomic_open, atomic_path, atomic_torch_save
from imgdag.distributed import all_reduce_sum, wrap_ddp
from imgdag.errors import DataError
from imgdag.faults import fault_point
from imgdag.seeds import epoch_seed
from imgdag.weightfiles import load_torch

PROGRESS_EVERY_S = 10.0  # without a progress bar, a line this often inside an epoch
HISTORY_FIELDS = ["epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr"]
TIMES_FIELDS = ["epoch", "seconds"]


def select_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; 'cpu' or 'cuda[:N]' force one."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def autocast(device: torch.device):
    """bf16 autocast on CUDA; full precision on CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def prepare_model(model: nn.Module, device: torch.device, compile: bool = False) -> nn.Module:
    """Move to the device (channels_last on CUDA), wrap in DDP under torchrun, optionally
    torch.compile (after DDP, as torch recommends)."""
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    model = wrap_ddp(model, device)
    return torch.compile(model) if compile else model


def topk_hits(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> torch.Tensor:
    """How many rows have their label among the top-k logits, for each k (k capped at the
    class count), as a tensor on the logits' device: adding it up needs no host sync."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hit = top == labels.unsqueeze(1)
    return torch.stack([hit[:, :k].any(dim=1).sum() for k in ks])


def progress(batches, desc: str):
    """`batches`, showing progress: tqdm's bar, or where bars are off (`TQDM_DISABLE=1`, as the
    rules set: a bar redrawn in a job's log is noise) one line every PROGRESS_EVERY_S seconds,
    so a long epoch shows it moves. Counts batches only (no host sync)."""
    total = getattr(batches, "total", None)
    if not os.environ.get("TQDM_DISABLE"):
        yield from tqdm(batches, total=total, desc=desc, leave=False, mininterval=1)
        return
    start = last = time.monotonic()
    for done, batch in enumerate(batches, 1):
        yield batch
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S:
            print(f"  {desc}: batch {done}/{total or '?'}, {now - start:.0f} s", flush=True)
            last = now


def train_one_epoch(model, optimizer, scheduler, batches, device, desc: str = "train",
                    label_smoothing: float = 0.0) -> dict:
    """One pass over `batches` (already seeded for this epoch); mean loss, top-1 and count.

    Loss and hits are summed on the device and read once at the end: no host sync per step
    (the progress bar counts batches only), so a GPU never waits for the Python loop.
    """
    model.train()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    sums, seen = torch.zeros(2, dtype=torch.float64, device=device), 0  # loss, top-1 hits
    for x, y in progress(batches, desc):
        with autocast(device):
            logits = model(x)
            loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        sums += torch.stack([loss.detach() * len(y), topk_hits(logits.detach(), y, ks=(1,))[0]])
        seen += len(y)
        fault_point("train_batch")
    total_loss, correct = sums.tolist()  # the epoch's one host sync
    return {"loss": total_loss / max(seen, 1), "top1": correct / max(seen, 1), "count": seen}


@torch.no_grad()
def evaluate(model, batches, device, desc: str = "eval", keep_logits: bool = False) -> dict:
    """Mean loss, top-1 and top-5 over `batches`; with keep_logits, all logits and labels too.
    Sums stay on the device until the end, as in train_one_epoch."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    sums, seen = torch.zeros(3, dtype=torch.float64, device=device), 0  # loss, top-1, top-5
    all_logits, all_labels = [], []
    for x, y in progress(batches, desc):
        with autocast(device):
            logits = model(x).float()
        sums += torch.cat([loss_fn(logits, y).view(1), topk_hits(logits, y)])
        seen += len(y)
        if keep_logits:
            all_logits.append(logits)
            all_labels.append(y)
    total_loss, top1, top5 = sums.tolist()
    result = {"loss": total_loss / max(seen, 1), "top1": top1 / max(seen, 1),
              "top5": top5 / max(seen, 1), "count": seen}
    if keep_logits:
        result["logits"], result["labels"] = torch.cat(all_logits).cpu(), torch.cat(all_labels).cpu()
    return result


def make_optimizer(model: nn.Module, params: dict) -> torch.optim.Optimizer:
    """SGD (momentum, optionally nesterov), Adam or AdamW, from params optimizer, lr, momentum,
    nesterov, weight_decay."""
    name, lr, wd = params["optimizer"], params["lr"], params.get("weight_decay", 0.0)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=params.get("momentum", 0.9),
                               nesterov=params.get("nesterov", False), weight_decay=wd)
    if name in ("adam", "adamw"):
        kind = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return kind(model.parameters(), lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r} (expected sgd, adam or adamw)")


def make_scheduler(optimizer, params: dict, steps_per_epoch: int):
    """Per-step LR schedule from torch's schedulers: 'none'; 'cosine' (`CosineAnnealingLR` to 0
    over all epochs); 'warmup_cosine' (`LinearLR` from lr / warm-up steps up to lr over
    warmup_epochs, default 1, then `CosineAnnealingLR` to 0 over the other epochs, as
    torchvision's reference); 'step' (`StepLR`: x gamma every step_epochs epochs, as the Tiny
    ImageNet source)."""
    kind, total = params.get("lr_schedule", "none"), params["epochs"] * steps_per_epoch
    schedulers = torch.optim.lr_scheduler
    if kind == "none":
        return None
    if kind == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=total)
    if kind == "warmup_cosine":
        warm = params.get("warmup_epochs", 1) * steps_per_epoch
        warmup = schedulers.LinearLR(optimizer, start_factor=1 / warm, total_iters=warm)
        cosine = schedulers.CosineAnnealingLR(optimizer, T_max=max(total - warm, 1))
        return schedulers.SequentialLR(optimizer, [warmup, cosine], milestones=[warm])
    if kind == "step":
        return schedulers.StepLR(optimizer, step_size=params["step_epochs"] * steps_per_epoch,
                                 gamma=params.get("gamma", 0.1))
    raise ValueError(f"unknown lr_schedule {kind!r} (expected none, cosine, warmup_cosine or step)")


def _changed_params(saved: dict, params: dict) -> list[str]:
    """The params (checkpoint_every, keep_checkpoints aside) whose values differ between a
    checkpoint and now."""
    keys = (saved.keys() | params.keys()) - {"checkpoint_every", "keep_checkpoints"}
    return sorted(k for k in keys if saved.get(k) != params.get(k))


def save_checkpoint(path, **state) -> None:
    """torch.save a checkpoint dict atomically (the same state gives the same bytes)."""
    atomic_torch_save(state, path)


def _link_or_copy(source: Path, target: Path) -> None:
    """target becomes a hard link of source (a copy where links are not possible), atomically."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def write_history(history: list[dict], csv_path, png_path=None, times_csv=None) -> None:
    """The per-epoch log as CSV (what `dvc plots` draws), optionally the epochs' seconds as
    another CSV and a PNG of the curves."""
    for path, fields in ((csv_path, HISTORY_FIELDS), (times_csv, TIMES_FIELDS)):
        if path is not None:
            with atomic_open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(history)
    if png_path is None:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", ax_loss), ("top1", ax_acc)):
        ax.plot(epochs, [row[f"train_{key}"] for row in history], "o-", label="train")
        ax.plot(epochs, [row[f"val_{key}"] for row in history], "o-", label="val")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def fit(model: nn.Module, train_batches, val_batches, params: dict, device: torch.device,
        checkpoint_dir, log_csv, curves_png=None, stop_after: Optional[int] = None,
        is_main: bool = True, times_csv=None) -> list[dict]:
    """Train for params['epochs'] epochs with checkpoints and resume; return the history.

    stop_after: leave after this many epochs in this run (a time-boxed job; the next run
    resumes). is_main: only the main process writes files (DDP).
    """
    checkpoint_dir = Path(checkpoint_dir)
    optimizer = make_optimizer(model, params)
    scheduler = make_scheduler(optimizer, params, len(train_batches))
    start, history = 0, []
    last = checkpoint_dir / "last.pt"
    if last.exists():
        saved = load_torch(last, "a checkpoint of an earlier run: delete it to retrain from the start",
                           map_location=device)
        changed = _changed_params(saved["params"], params)
        if not changed:
            _unwrap(model).load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved["scheduler"])
            start, history = saved["epoch"], saved["history"]
            print(f"resuming from {last} after epoch {start}")
        else:
            print(f"removing the checkpoints in {checkpoint_dir}, starting over: they were trained "
                  "with other params: " + ", ".join(f"{k} {saved['params'].get(k)!r}, now {params.get(k)!r}"
                                                    for k in changed))
            if is_main:
                for old in checkpoint_dir.glob("*.pt"):
                    old.unlink()
    epochs, every = params["epochs"], params.get("checkpoint_every", 1)
    for epoch in range(start, epochs):
        if stop_after is not None and epoch - start >= stop_after:
            print(f"stopping after {stop_after} epoch(s) as asked; rerun to resume")
            break
        began = time.perf_counter()
        torch.manual_seed(epoch_seed(params.get("seed", 0), epoch))  # dropout etc.
        lr = optimizer.param_groups[0]["lr"]  # the rate this epoch starts with
        train = train_one_epoch(model, optimizer, scheduler, _Epoch(train_batches, epoch),
                                device, desc=f"epoch {epoch + 1}/{epochs}",
                                label_smoothing=params.get("label_smoothing", 0.0))
        val = evaluate(model, _Epoch(val_batches, 0), device, desc="val")
        train, val = _over_ranks(train), _over_ranks(val)
        if not math.isfinite(train["loss"]):  # every rank sees it: they stop together
            raise DataError("--params", f"the training loss is {train['loss']} in epoch {epoch + 1}: these params "
                                        "make training diverge (lr and its schedule's gamma, weight_decay, "
                                        "momentum, normalize.std?); no model is written, nor this epoch's checkpoint")
        history.append({"epoch": epoch + 1, "train_loss": round(train["loss"], 6),
                        "train_top1": round(train["top1"], 6), "val_loss": round(val["loss"], 6),
                        "val_top1": round(val["top1"], 6), "val_top5": round(val["top5"], 6),
                        "lr": lr,
                        "seconds": round(time.perf_counter() - began, 3)})
        if not is_main:
            continue
        row = history[-1]
        if _shows_epoch(epoch + 1, epochs, start + 1):
            print(f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f} "
                  f"top1 {row['train_top1']:.4f} | val loss {row['val_loss']:.4f} "
                  f"top1 {row['val_top1']:.4f} top5 {row['val_top5']:.4f} ({row['seconds']:.1f} s)",
                  flush=True)
        write_history(history, log_csv, curves_png, times_csv)  # progress is visible while training
        if (epoch + 1) % every == 0 or epoch + 1 == epochs:
            state = dict(model=_unwrap(model).state_dict(), optimizer=optimizer.state_dict(),
                         scheduler=scheduler.state_dict() if scheduler else None,
                         epoch=epoch + 1, params=params,
                         history=[{k: v for k, v in row.items() if k != "seconds"} for row in history])
            save_checkpoint(last, **state)
            _link_or_copy(last, checkpoint_dir / f"epoch_{epoch + 1:03d}.pt")
            keep = params.get("keep_checkpoints", 2)
            for old in sorted(checkpoint_dir.glob("epoch_*.pt"))[:-keep]:
                old.unlink()
            fault_point("checkpoint")
    if is_main and history:  # also when a finished run was resumed: nothing left to train
        write_history(history, log_csv, curves_png, times_csv)
    return history


def _shows_epoch(number: int, epochs: int, first: int) -> bool:
    """Whether epoch `number` (1-based) gets its line: every epoch of a run of up to 20, about
    ten lines for a longer one (the first this run trains, every tenth part, the last); the
    per-epoch log has them all."""
    return epochs <= 20 or number in (first, epochs) or number % -(-epochs // 10) == 0


def _over_ranks(result: dict) -> dict:
    """A train/evaluate result with its means taken over every DDP rank's samples."""
    keys = [k for k in ("loss", "top1", "top5") if k in result]
    *sums, count = all_reduce_sum([result[k] * result["count"] for k in keys] + [result["count"]])
    return {**result, **{k: s / max(count, 1) for k, s in zip(keys, sums, strict=True)},
            "count": int(count)}


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


class _Epoch:
    """Binds an epoch number to a batches object so it iterates like a loader."""

    def __init__(self, batches, epoch: int):
        self.batches, self.epoch_number, self.total = batches, epoch, len(batches)

    def __iter__(self):
        return iter(self.batches.epoch(self.epoch_number))
