"""Evaluate a trained model on a test array cache or map file: accuracy, per-class accuracy,
confusion matrix CSV and forward latency per batch, into a metrics JSON."""
import json

import torch

from imgdag.arraycache import read_array_cache
from imgdag.atomic import atomic_open
from imgdag.batches import ArrayBatches
from imgdag.cli import json_object, parser, run
from imgdag.engine import evaluate, prepare_model, select_device
from imgdag.errors import DataError
from imgdag.faults import fault_point
from imgdag.mapdata import MapBatches
from imgdag.metrics import (confusion_matrix, device_name, forward_latency_ms,
                            per_class_accuracy, write_confusion_csv)
from imgdag.models import load_trained_model


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="trained-model file (from train.py)")
    test = p.add_mutually_exclusive_group(required=True)
    test.add_argument("--test-cache", help="array cache stem of the test set")
    test.add_argument("--test-map", help="CNTK map file of the test set (a model trained from map files)")
    p.add_argument("--image-root", help="folder the map file's relative paths are under (default: the current folder)")
    p.add_argument("--num-workers", type=int, default=2, help="map-file loader processes")
    p.add_argument("--params", type=json_object, default={},
                   help="the recipe's evaluate section: latency_batch, latency_repeats, device")
    p.add_argument("--metrics-out", required=True, help="metrics JSON to write")
    p.add_argument("--confusion-out", required=True, help="confusion matrix CSV to write")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.params.get("device", "auto"))
    model, saved = load_trained_model(args.model, device)
    model = prepare_model(model, device)
    spec, classes = saved["input"], saved["classes"]
    if args.test_map:
        if "resize" not in spec:
            raise DataError(args.model, "not trained from map files (its input has no resize); use --test-cache")
        batches = MapBatches(args.test_map, 256, device, spec["mean"], spec["std"], spec["size"][0],
                             resize=spec["resize"], num_workers=args.num_workers, image_root=args.image_root)
    else:
        images, labels = read_array_cache(args.test_cache)
        batches = ArrayBatches(images, labels, 256, device, spec["mean"], spec["std"])
    result = evaluate(model, _Once(batches), device, desc="test", keep_logits=True)
    confusion = confusion_matrix(result["logits"].argmax(1), result["labels"], len(classes))
    write_confusion_csv(args.confusion_out, confusion, classes)
    fault_point("evaluate")
    batch = args.params.get("latency_batch", 64)
    latency = forward_latency_ms(model, (batch, spec["channels"], *spec["size"]), device,
                                 repeats=args.params.get("latency_repeats", 30))
    metrics = {
        "test_accuracy": round(result["top1"], 6),
        "test_top5": round(result["top5"], 6),
        "test_loss": round(result["loss"], 6),
        "test_images": result["count"],
        "per_class_accuracy": per_class_accuracy(confusion, classes),
        "latency": {f"ms_per_batch_{batch}": round(latency, 4), "device": device_name(device)},
    }
    with atomic_open(args.metrics_out, "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"test accuracy {metrics['test_accuracy']:.4f} on {result['count']} images; "
          f"forward {latency:.2f} ms per batch of {batch} on {device_name(device)}")


class _Once:
    def __init__(self, batches):
        self.batches, self.total = batches, len(batches)

    def __iter__(self):
        return iter(self.batches.epoch(0))


if __name__ == "__main__":
    run(main)
