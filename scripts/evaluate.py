"""Evaluate a trained model on a held-out array cache, .rec or map file: the headline figures
(`<split>_accuracy`, top-5, loss, image count) into a metrics JSON; per-class accuracy, forward
latency per batch, the confusion matrix and each image's (actual, predicted) pair into their
own files."""

import imgdag.threads  # noqa: F401  first: OpenMP reads its wait policy when torch loads
from imgdag.arraycache import read_array_cache
from imgdag.atomic import atomic_write_json
from imgdag.batches import ArrayBatches
from imgdag.cli import json_object, parser, run
from imgdag.engine import evaluate, prepare_model, select_device
from imgdag.errors import DataError
from imgdag.faults import fault_point
from imgdag.imagedata import ImageBatches, MapFileImages, RecordImages
from imgdag.metrics import (confusion_matrix, device_name, forward_latency_ms,
                            per_class_accuracy, write_classified_csv, write_confusion_csv)
from imgdag.models import load_trained_model
from imgdag.threads import add_thread_arguments, start_threads


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="trained-model file (from train.py)")
    test = p.add_mutually_exclusive_group(required=True)
    test.add_argument("--test-cache", help="array cache stem of the test set")
    test.add_argument("--test-rec", help="RecordIO .rec of the test set (a model trained on crops of large images)")
    test.add_argument("--test-map", help="CNTK map file of the test set (a model trained on crops of large images)")
    p.add_argument("--image-root", help="folder the map file's relative paths are under (default: the current folder)")
    p.add_argument("--num-workers", type=int,
                   help="image decoding threads (.rec, map files), out of --threads "
                        "(default: what torch leaves, at least 1; 0: decode between steps)")
    p.add_argument("--params", type=json_object, default={},
                   help="the recipe's evaluate section: latency_batch, latency_repeats, device")
    p.add_argument("--split", choices=["test", "val"], default="test",
                   help="what the held-out set is: names the metrics (test_accuracy or val_accuracy)")
    p.add_argument("--metrics-out", required=True, help="headline metrics JSON to write")
    p.add_argument("--per-class-out", required=True, help="per-class accuracy JSON to write")
    p.add_argument("--latency-out", required=True, help="forward latency JSON to write")
    p.add_argument("--confusion-out", required=True, help="confusion matrix CSV to write")
    p.add_argument("--classified-out", required=True,
                   help="CSV of actual,predicted class per image (DVC's confusion plot)")
    add_thread_arguments(p)
    args = p.parse_args()
    reads_images = bool(args.test_map or args.test_rec)
    threads, workers = start_threads(args, args.num_workers if reads_images else 0)
    if reads_images and args.num_workers is None:  # a decoding thread overlaps the model's steps,
        workers = max(workers, 1)                   # and sleeps while its batches wait: even on 2 cores
    device = select_device(args.params.get("device", "auto"))
    model, saved = load_trained_model(args.model, device)
    model = prepare_model(model, device)
    spec, classes = saved["input"], saved["classes"]
    if args.test_map or args.test_rec:
        if "resize" not in spec:
            raise DataError(args.model, "not trained on crops of large images (its input has no resize); "
                                        "use --test-cache")
        images = RecordImages(args.test_rec) if args.test_rec else MapFileImages(args.test_map, args.image_root)
        batches = ImageBatches(images, 256, device, spec["mean"], spec["std"], spec["size"][0],
                               resize=spec["resize"], num_workers=workers)
    else:
        images, labels = read_array_cache(args.test_cache)
        batches = ArrayBatches(images, labels, 256, device, spec["mean"], spec["std"])
    result = evaluate(model, _Once(batches), device, desc="test", keep_logits=True)
    confusion = confusion_matrix(result["logits"].argmax(1), result["labels"], len(classes))
    write_confusion_csv(args.confusion_out, confusion, classes)
    write_classified_csv(args.classified_out, result["labels"], result["logits"].argmax(1), classes)
    fault_point("evaluate")
    batch = args.params.get("latency_batch", 64)
    latency = forward_latency_ms(model, (batch, spec["channels"], *spec["size"]), device,
                                 repeats=args.params.get("latency_repeats", 30))
    split = args.split
    metrics = {f"{split}_accuracy": round(result["top1"], 6), f"{split}_top5": round(result["top5"], 6),
               f"{split}_loss": round(result["loss"], 6), f"{split}_images": result["count"]}
    atomic_write_json(args.metrics_out, metrics)
    atomic_write_json(args.per_class_out, per_class_accuracy(confusion, classes))
    atomic_write_json(args.latency_out, {f"ms_per_batch_{batch}": round(latency, 4), "device": device_name(device)})
    print(f"{split} accuracy {metrics[f'{split}_accuracy']:.4f} on {result['count']} images; "
          f"forward {latency:.2f} ms per batch of {batch} on {device_name(device)}")


class _Once:
    def __init__(self, batches):
        self.batches, self.total = batches, len(batches)

    def __iter__(self):
        return iter(self.batches.epoch(0))


if __name__ == "__main__":
    run(main)
