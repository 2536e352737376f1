"""Train a classifier with the imgdag engine (checkpoints, resume, log) on uint8 array caches
or on CNTK map files (images decoded and cropped by loader workers).

Runs as one process, or as many under `torchrun --nproc_per_node=GPUS scripts/train.py ...`
(DDP on array caches; see imgdag/distributed.py).
"""
import hashlib
from functools import partial
from pathlib import Path

import numpy as np
import torch

from imgdag.arraycache import cache_paths, read_array_cache
from imgdag.augment import random_crop_rotate
from imgdag.batches import ArrayBatches
from imgdag.cli import json_object, parser, run
from imgdag.distributed import init_from_env, is_main, shutdown
from imgdag.engine import fit, prepare_model, select_device
from imgdag.errors import DataError
from imgdag.faults import lock_run
from imgdag.formats.class_list import read_class_list
from imgdag.mapdata import MapBatches
from imgdag.models import build_model, save_trained_model


def cache_batches(args, params, device, rank=0, world=1):
    """Train and val ArrayBatches (this rank's shard) from the array caches, and the input spec."""
    train_x, train_y = read_array_cache(args.train_cache)
    val_x, val_y = read_array_cache(args.val_cache)
    for stem, labels in ((args.train_cache, train_y), (args.val_cache, val_y)):
        check_labels(cache_paths(stem)[1], labels, params["num_classes"], "row")
    norm, aug = params["normalize"], params.get("augment")
    augment = partial(random_crop_rotate, **aug) if aug else None
    batches = partial(ArrayBatches, device=device, mean=norm["mean"], std=norm["std"],
                      batch_size=params["batch_size"], rank=rank, world_size=world)
    train = batches(train_x, train_y, shuffle=True, seed=params["seed"], augment=augment)
    val = batches(val_x, val_y, pad=False)
    return train, val, {"size": list(train_x.shape[1:3]), "channels": int(train_x.shape[3]), **norm}


def check_labels(path, labels, num_classes: int, row: str) -> None:
    """Every label in 0 .. num_classes-1, else a DataError naming the first `row` (1-based) outside."""
    labels = np.asarray(labels)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DataError(path, f"{row} {bad[0] + 1}: label {labels[bad[0]]} is outside 0..{num_classes - 1} "
                              f"(num_classes {num_classes}; {bad.size} such {row}s)")


def map_batches(args, params, device):
    """Train and val MapBatches from the map files (params `crop`), and the model's input spec."""
    norm, crop = params["normalize"], params["crop"]
    batches = partial(MapBatches, batch_size=params["batch_size"], device=device,
                      mean=norm["mean"], std=norm["std"], crop=crop["size"],
                      num_workers=args.num_workers, image_root=args.image_root)
    train = batches(args.train_map, train=True, min_scale=crop.get("min_scale", 0.08),
                    mirror=crop.get("mirror", True), seed=params["seed"])
    val = batches(args.val_map, resize=crop["resize"])
    for path, labels in ((args.train_map, train.labels), (args.val_map, val.labels)):
        check_labels(path, labels, params["num_classes"], "line")
    spec = {"size": [crop["size"]] * 2, "channels": 3, "resize": crop["resize"], **norm}
    return train, val, spec


def data_fingerprint(args) -> str:
    """sha256 over the training and validation inputs: a checkpoint resumes only on the same data."""
    if args.train_cache:
        files = [f for stem in (args.train_cache, args.val_cache) for f in cache_paths(stem)]
    else:
        files = [Path(args.train_map), Path(args.val_map)]
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    p = parser(__doc__)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--train-cache", help="array cache stem of the training set")
    source.add_argument("--train-map", help="CNTK map file of the training set (path<TAB>label)")
    p.add_argument("--val-cache", help="array cache stem evaluated every epoch (with --train-cache)")
    p.add_argument("--val-map", help="map file evaluated every epoch (with --train-map)")
    p.add_argument("--image-root", help="folder the map files' relative paths are under "
                                        "(default: the current folder)")
    p.add_argument("--num-workers", type=int, default=2, help="map-file loader processes")
    p.add_argument("--classes", help="class list file (classes.txt) naming the model's classes; "
                                     "default: 0 .. num_classes-1")
    p.add_argument("--params", required=True, type=json_object,
                   help="the recipe's train section of params.yaml, as a JSON object")
    p.add_argument("--model-out", required=True, help="trained-model file to write")
    p.add_argument("--log-csv", required=True, help="per-epoch log CSV")
    p.add_argument("--curves-png", help="PNG of the loss and accuracy curves")
    p.add_argument("--checkpoint-dir", required=True, help="where checkpoints go and resume from")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--stop-after", type=int,
                   help="leave after this many epochs in this run; the next run resumes")
    args = p.parse_args()
    if (args.val_cache is None) != (args.train_cache is None) or (args.val_map is None) != (args.train_map is None):
        p.error("--train-cache and --val-cache go together, as do --train-map and --val-map")
    params = args.params
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, _, device = init_from_env(select_device(params.get("device", "auto")))
    if is_main():
        lock_run(args.checkpoint_dir)  # one trainer per run: held until the process ends
    if args.train_cache:
        train, val, input_spec = cache_batches(args, params, device, rank, world)
    elif world > 1:
        raise DataError(args.train_map, "map-file training runs in one process; DDP needs "
                                        "array caches (--train-cache)")
    else:
        train, val, input_spec = map_batches(args, params, device)
    torch.manual_seed(params["seed"])
    n = params["num_classes"]
    classes = read_class_list(args.classes) if args.classes else [str(i) for i in range(n)]
    if len(classes) != n:
        raise DataError(args.classes, f"{len(classes)} classes but num_classes is {n}")
    model = build_model(params["model"], len(classes), **params.get("model_args", {}))
    net = prepare_model(model, device, compile=params.get("compile", False))  # wraps model
    print(f"training {params['model']} on {len(train.labels)} images ({device}), "
          f"validating on {len(val.labels)}")
    run_params = {**params, "data_sha256": data_fingerprint(args)}  # part of the resume check
    history = fit(net, train, val, run_params, device, args.checkpoint_dir, args.log_csv,
                  args.curves_png, stop_after=args.stop_after, is_main=is_main())
    if is_main() and history and history[-1]["epoch"] == params["epochs"]:
        save_trained_model(args.model_out, model, params["model"], classes, input_spec, params)
        print(f"model written to {args.model_out}: val top-1 {history[-1]['val_top1']:.4f}")
    shutdown()


if __name__ == "__main__":
    run(main)
