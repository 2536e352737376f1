"""Train a classifier on uint8 array caches with the imgdag engine (checkpoints, resume, log)."""
from functools import partial

import torch

from imgdag.arraycache import read_array_cache
from imgdag.augment import random_crop_rotate
from imgdag.batches import ArrayBatches
from imgdag.cli import json_object, parser, run
from imgdag.engine import fit, prepare_model, select_device
from imgdag.errors import DataError
from imgdag.formats.class_list import read_class_list
from imgdag.models import build_model, save_trained_model


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--train-cache", required=True, help="array cache stem of the training set")
    p.add_argument("--val-cache", required=True, help="array cache stem evaluated every epoch")
    p.add_argument("--params", required=True, type=json_object,
                   help="the recipe's train section of params.yaml, as a JSON object")
    p.add_argument("--model-out", required=True, help="trained-model file to write")
    p.add_argument("--log-csv", required=True, help="per-epoch log CSV")
    p.add_argument("--curves-png", help="PNG of the loss and accuracy curves")
    p.add_argument("--checkpoint-dir", required=True, help="where checkpoints go and resume from")
    p.add_argument("--classes", help="classes.txt naming label i on line i (default: 0, 1, ...)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--stop-after", type=int,
                   help="leave after this many epochs in this run; the next run resumes")
    args = p.parse_args()
    params = args.params
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(params.get("device", "auto"))
    train_x, train_y = read_array_cache(args.train_cache)
    val_x, val_y = read_array_cache(args.val_cache)
    norm, aug = params["normalize"], params.get("augment")
    augment = partial(random_crop_rotate, **aug) if aug else None
    batches = partial(ArrayBatches, device=device, mean=norm["mean"], std=norm["std"],
                      batch_size=params["batch_size"])
    train = batches(train_x, train_y, shuffle=True, seed=params["seed"], augment=augment)
    val = batches(val_x, val_y)
    torch.manual_seed(params["seed"])
    n = params["num_classes"]
    classes = read_class_list(args.classes) if args.classes else [str(i) for i in range(n)]
    if len(classes) != n:
        raise DataError(args.classes, f"{len(classes)} classes, but params num_classes is {n}")
    model = build_model(params["model"], len(classes), **params.get("model_args", {}))
    model = prepare_model(model, device, compile=params.get("compile", False))
    print(f"training {params['model']} on {len(train_y)} images ({device}), "
          f"validating on {len(val_y)}")
    history = fit(model, train, val, params, device, args.checkpoint_dir, args.log_csv,
                  args.curves_png, stop_after=args.stop_after)
    if history and history[-1]["epoch"] == params["epochs"]:
        size = list(train_x.shape[1:3])
        input_spec = {"size": size, "channels": int(train_x.shape[3]), **norm}
        save_trained_model(args.model_out, getattr(model, "_orig_mod", model), params["model"],
                           classes, input_spec, params)
        print(f"model written to {args.model_out}: val top-1 {history[-1]['val_top1']:.4f}")


if __name__ == "__main__":
    run(main)
