"""1-, 5- and 10-crop top-1/top-5 evaluation of an AlexNet on an ILSVRC2012 val table: headline
metrics JSON (top-1/top-5 error per crop mode), a run-info JSON (images left out, weights,
preprocessing, accuracies and counts) and a predictions CSV."""
import csv
from pathlib import Path

import imgdag.threads  # noqa: F401  first: OpenMP reads its wait policy when torch loads

from imgdag.atomic import atomic_open, atomic_write_json
from imgdag.cli import json_object, parser, run
from imgdag.engine import select_device
from imgdag.errors import DataError
from imgdag.formats.index_table import read_ilsvrc_val_table
from imgdag.images import ImageLoader, PixelNormalizer
from imgdag.layouts.records import is_image_name
from imgdag.models import build_model, load_trained_model, read_state_dict
from imgdag.multicrop import CAFFE, TORCHVISION, CropPreprocess, ImageFiles, evaluate_crops
from imgdag.threads import add_thread_arguments, start_threads
from imgdag.weightfiles import check_weights

SOURCES = ("imagenet8_checkpoint", "torchvision", "caffe_npy")


def load_model(source: str, path, device, records, table):
    """(model, preprocess, how it preprocesses) for a weights source; DataError when the table's
    labels do not fit the model's classes."""
    if source == "imagenet8_checkpoint":
        model, saved = load_trained_model(path, device)
        classes, spec = saved["classes"], saved["input"]
        if "resize" not in spec:
            raise DataError(path, "not trained from map files (its input spec has no resize)")
        wrong = [r for r in records if r.label >= len(classes) or classes[r.label] != r.wnid]
        if wrong:
            raise DataError(table, f"{len(wrong)} rows disagree with {path}'s classes, e.g. {wrong[0].path} "
                                   f"(label {wrong[0].label}, {wrong[0].wnid}): was the table written with "
                                   "the model's class list?")
        preprocess = CropPreprocess(spec["resize"], spec["size"][0],
                                    PixelNormalizer(spec["mean"], spec["std"], device))
        return model, preprocess, "RGB, the model's mean/std"
    if source == "torchvision":
        model, preprocess, how = build_model("alexnet", 1000, weights=path), TORCHVISION, "RGB, ImageNet mean/std"
    else:
        fc8 = read_state_dict(path).get("classifier.6.weight")
        if fc8 is None:
            raise DataError(path, "no classifier.6.weight: not a file written by convert_caffe_alexnet.py")
        model, preprocess, how = build_model("caffe_alexnet", len(fc8), weights=path), CAFFE, "BGR, 0-255 minus mean"
    classes = model.classifier[-1].out_features
    if max(r.label for r in records) >= classes:
        raise DataError(table, f"label {max(r.label for r in records)} but {path} has {classes} classes")
    return model, preprocess, how


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--table", required=True,
                   help="val table CSV (file,ilsvrc2012_id,wnid,label) in the model's class order")
    p.add_argument("--images", required=True, help="folder of the val images the table's files are under")
    p.add_argument("--model", required=True,
                   help="weights file: a trained-model file (imagenet8_checkpoint), a torchvision AlexNet "
                        ".pth (torchvision) or convert_caffe_alexnet.py's output (caffe_npy)")
    p.add_argument("--params", required=True, type=json_object,
                   help="the recipe's section: weights {source, path}, evaluate {crops, batch_size, device}")
    p.add_argument("--metrics-out", required=True,
                   help="headline metrics JSON to write (image count, top-1/top-5 error per crop mode)")
    p.add_argument("--run-info-out", required=True,
                   help="JSON to write with the rest: images left out, weights, preprocessing, "
                        "accuracies and correct counts per crop mode")
    p.add_argument("--predictions-out", required=True, help="predictions CSV to write")
    p.add_argument("--num-workers", type=int,
                   help="image decoding processes, out of --threads (default: threads - 1)")
    add_thread_arguments(p)
    args = p.parse_args()
    weights, options = args.params["weights"], args.params.get("evaluate", {})
    if weights["source"] not in SOURCES:
        p.error(f"weights source {weights['source']!r} is not one of {', '.join(SOURCES)}")
    threads, workers = start_threads(args, args.num_workers)
    device = select_device(options.get("device", "auto"))
    records = read_ilsvrc_val_table(args.table)
    if not records:
        raise DataError(args.table, "no images to evaluate (none of the model's classes?)")
    images = Path(args.images)
    missing = [r.path for r in records if not (images / r.path).is_file()]
    if missing:
        raise DataError(args.table, f"{len(missing)} images are not under {images}, e.g. {missing[0]}")
    weights_file = check_weights(weights["path"])  # the file the params name (the .npy for caffe_npy)
    model, preprocess, how = load_model(weights["source"], args.model, device, records, args.table)
    dataset = ImageFiles([images / r.path for r in records], [r.label for r in records], preprocess.resize)
    loader = ImageLoader(dataset, batch_size=options.get("batch_size", 32), num_workers=workers)
    crops = tuple(options.get("crops", (1, 5, 10)))
    result = evaluate_crops(model, loader, crops, preprocess, device)

    present = sum(1 for f in images.rglob("*") if is_image_name(f.name))
    per_mode = result["metrics"]
    metrics = {"images": result["images"],
               **{mode: {k: round(m[k], 6) for k in ("top1_error", "top5_error")}
                  for mode, m in per_mode.items()}}
    run_info = {
        "images_not_evaluated": present - result["images"],  # other classes, or no label
        "weights": {**weights, **weights_file, "loaded": args.model},
        "preprocess": {"resize": preprocess.resize, "crop": preprocess.crop, "normalize": how},
        **{mode: {k: round(v, 6) for k, v in m.items() if k not in metrics[mode]}
           for mode, m in per_mode.items()},
    }
    atomic_write_json(args.metrics_out, metrics)
    atomic_write_json(args.run_info_out, run_info)
    modes = list(result["predictions"])
    with atomic_open(args.predictions_out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "wnid", "label", *(f"top5_{m}" for m in modes), *(f"p_{m}" for m in modes)])
        for i, r in enumerate(records):
            top5 = [" ".join(map(str, result["predictions"][m]["classes"][i])) for m in modes]
            probs = [round(float(result["predictions"][m]["probs"][i, 0]), 6) for m in modes]
            writer.writerow([r.path, r.wnid, r.label, *top5, *probs])
    errors = ", ".join(f"{m} top-1/top-5 error {result['metrics'][m]['top1_error']:.4f}/"
                       f"{result['metrics'][m]['top5_error']:.4f}" for m in modes)
    print(f"{result['images']} images ({run_info['images_not_evaluated']} others not evaluated), "
          f"{weights['source']} weights: {errors}")


if __name__ == "__main__":
    run(main)
