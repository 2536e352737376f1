"""Train a classifier with the imgdag engine (checkpoints, resume, log) on uint8 array caches,
or on RecordIO .rec files or CNTK map files (images decoded and cropped by loader workers).

Runs as one process, or as many under `torchrun --nproc_per_node=GPUS scripts/train.py ...`
(DDP, each process its shard; see imgdag/distributed.py).
"""
import hashlib
from functools import partial
from pathlib import Path

import imgdag.threads  # noqa: F401  first: OpenMP reads its wait policy when torch loads
import numpy as np
import torch

from imgdag.arraycache import cache_paths, read_array_cache
from imgdag.augment import batch_augment
from imgdag.batches import ArrayBatches
from imgdag.cli import json_object, parser, run
from imgdag.distributed import init_from_env, is_main, shutdown
from imgdag.engine import fit, prepare_model, select_device
from imgdag.errors import DataError
from imgdag.faults import lock_run
from imgdag.formats.class_list import read_class_list
from imgdag.imagedata import ImageBatches, MapFileImages, RecordImages
from imgdag.models import build_model, save_trained_model
from imgdag.threads import add_thread_arguments, start_threads
from imgdag.trainparams import train_params_problems


def cache_batches(args, params, device, rank=0, world=1):
    """Train and val ArrayBatches (this rank's shard) from the array caches, and the input spec."""
    train_x, train_y = read_array_cache(args.train_cache)
    val_x, val_y = read_array_cache(args.val_cache)
    for stem, labels in ((args.train_cache, train_y), (args.val_cache, val_y)):
        check_labels(cache_paths(stem)[1], labels, params["num_classes"], "row")
    check_params_fit(cache_paths(args.train_cache)[0], params, train_x.shape[3], min(train_x.shape[1:3]))
    norm, aug = params["normalize"], params.get("augment")
    batches = partial(ArrayBatches, device=device, mean=norm["mean"], std=norm["std"],
                      batch_size=params["batch_size"], rank=rank, world_size=world)
    train = batches(train_x, train_y, shuffle=True, seed=params["seed"],
                    **(batch_augment(**aug) if aug else {}))
    val = batches(val_x, val_y, pad=False)
    return train, val, {"size": list(train_x.shape[1:3]), "channels": int(train_x.shape[3]), **norm}


def check_labels(path, labels, num_classes: int, row: str) -> None:
    """Every label in 0 .. num_classes-1, else a DataError naming the first `row` (1-based) outside."""
    labels = np.asarray(labels)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DataError(path, f"{row} {bad[0] + 1}: label {labels[bad[0]]} is outside 0..{num_classes - 1} "
                              f"(num_classes {num_classes}; {bad.size} such {row}s)")


def check_params_fit(path, params, channels: int, side: int | None = None) -> None:
    """DataError naming `path` (the training images) when the params do not fit them or their
    model (imgdag.trainparams; `side`: the images' shorter side, when known)."""
    problems = train_params_problems(params, channels, side, "these images")
    if problems:
        raise DataError(path, "the train params do not fit: " + "; ".join(problems))


def image_batches(args, params, device, workers: int, rank=0, world=1):
    """Train and val ImageBatches (this rank's shard) from the .rec or map files (params
    `crop`), and the model's input spec."""
    norm, crop = params["normalize"], params["crop"]
    check_params_fit(args.train_rec or args.train_map, params, 3)
    batches = partial(ImageBatches, batch_size=params["batch_size"], device=device,
                      mean=norm["mean"], std=norm["std"], crop=crop["size"],
                      num_workers=workers, rank=rank, world_size=world)
    if args.train_rec:
        sources = [(args.train_rec, RecordImages(args.train_rec)), (args.val_rec, RecordImages(args.val_rec))]
    else:
        sources = [(path, MapFileImages(path, args.image_root)) for path in (args.train_map, args.val_map)]
    train = batches(sources[0][1], train=True, min_scale=crop.get("min_scale", 0.08),
                    mirror=crop.get("mirror", True), seed=params["seed"])
    val = batches(sources[1][1], resize=crop["resize"])
    for (path, _), labels in zip(sources, (train.labels, val.labels)):
        check_labels(path, labels, params["num_classes"], "record" if args.train_rec else "line")
    spec = {"size": [crop["size"]] * 2, "channels": 3, "resize": crop["resize"], **norm}
    return train, val, spec


def data_fingerprint(args) -> str:
    """sha256 over the training and validation inputs: a checkpoint resumes only on the same data."""
    digest = hashlib.sha256()
    if args.train_cache:
        files = [f for stem in (args.train_cache, args.val_cache) for f in cache_paths(stem)]
    elif args.train_rec:  # the indexes (keys, offsets) and the sizes: no pass over the images
        recs = [Path(args.train_rec), Path(args.val_rec)]
        files = [rec.with_suffix(".idx") for rec in recs]
        digest.update(str([rec.stat().st_size for rec in recs]).encode())
    else:
        files = [Path(args.train_map), Path(args.val_map)]
    for path in files:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()



def main() -> None:
    p = parser(__doc__)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--train-cache", help="array cache stem of the training set")
    source.add_argument("--train-rec", help="RecordIO .rec of the training set (its .idx beside it)")
    source.add_argument("--train-map", help="CNTK map file of the training set (path<TAB>label)")
    p.add_argument("--val-cache", help="array cache stem evaluated every epoch (with --train-cache)")
    p.add_argument("--val-rec", help=".rec evaluated every epoch (with --train-rec)")
    p.add_argument("--val-map", help="map file evaluated every epoch (with --train-map)")
    p.add_argument("--image-root", help="folder the map files' relative paths are under "
                                        "(default: the current folder)")
    p.add_argument("--num-workers", type=int,
                   help="image decoding threads (.rec, map files), out of --threads "
                        "(default: what torch leaves, at least 1; 0: decode between steps)")
    p.add_argument("--classes", help="class list file (classes.txt) naming the model's classes; "
                                     "default: 0 .. num_classes-1")
    p.add_argument("--params", required=True, type=json_object,
                   help="the recipe's train section of params.yaml, as a JSON object")
    p.add_argument("--model-out", required=True, help="trained-model file to write")
    p.add_argument("--log-csv", required=True, help="per-epoch log CSV (no wall-clock time: kept in git)")
    p.add_argument("--times-csv", help="each epoch's seconds as CSV")
    p.add_argument("--curves-png", help="PNG of the loss and accuracy curves")
    p.add_argument("--checkpoint-dir", required=True, help="where checkpoints go and resume from")
    add_thread_arguments(p)
    p.add_argument("--stop-after", type=int,
                   help="leave after this many epochs in this run; the next run resumes")
    args = p.parse_args()
    if any((getattr(args, f"val_{kind}") is None) != (getattr(args, f"train_{kind}") is None)
           for kind in ("cache", "rec", "map")):
        p.error("--train-cache and --val-cache go together, as do --train-rec and --val-rec, "
                "and --train-map and --val-map")
    params = args.params
    reads_images = bool(args.train_map or args.train_rec)
    threads, workers = start_threads(args, args.num_workers if reads_images else 0)
    if reads_images and args.num_workers is None:  # a decoding thread overlaps the model's steps,
        workers = max(workers, 1)                   # and sleeps while its batches wait: even on 2 cores
    rank, world, _, device = init_from_env(select_device(params.get("device", "auto")))
    if is_main():
        lock_run(args.checkpoint_dir)  # one trainer per run: held until the process ends
    if args.train_cache:
        train, val, input_spec = cache_batches(args, params, device, rank, world)
    else:
        train, val, input_spec = image_batches(args, params, device, workers, rank, world)
    torch.manual_seed(params["seed"])
    n = params["num_classes"]
    classes = read_class_list(args.classes) if args.classes else [str(i) for i in range(n)]
    if len(classes) != n:
        raise DataError(args.classes, f"{len(classes)} classes but num_classes is {n}")
    model = build_model(params["model"], len(classes), **params.get("model_args", {}))
    net = prepare_model(model, device, compile=params.get("compile", False))  # wraps model
    print(f"training {params['model']} on {len(train.labels)} images ({device}), "
          f"validating on {len(val.labels)}")
    # part of the resume check: the data, the thread count and the vector ISA (sums, and so
    # weights, depend on them)
    run_params = {**params, "data_sha256": data_fingerprint(args), "threads": threads,
                  "cpu_isa": args.cpu_isa}
    history = fit(net, train, val, run_params, device, args.checkpoint_dir, args.log_csv,
                  args.curves_png, stop_after=args.stop_after, is_main=is_main(),
                  times_csv=args.times_csv)
    if is_main() and history and history[-1]["epoch"] == params["epochs"]:
        save_trained_model(args.model_out, model, params["model"], classes, input_spec, params)
        print(f"model written to {args.model_out}: val top-1 {history[-1]['val_top1']:.4f}")
    shutdown()


if __name__ == "__main__":
    run(main)
