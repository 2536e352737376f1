"""Time one epoch of the small-image data path (ArrayBatches + random_crop_flip, as
bench_small_images.py's imgdag_crop_flip side) with the imgdag that PYTHONPATH names, and print
{"seconds", "digest"} as JSON: the digest is a sha256 of the epoch's batches (pixels and labels),
drawn again after the timed pass. bench_small_images.py --baseline runs it with this tree and
with another checkout, so that both sides start alike and their batches can be compared.
It imports nothing from benchmarks/ (timing.py would put this tree's imgdag first).
"""
import argparse
import hashlib
import json
import time

import imgdag.threads  # noqa: F401  before torch: idle OpenMP threads sleep

import torch  # noqa: E402

from imgdag.arraycache import read_array_cache  # noqa: E402
from imgdag.augment import batch_augment  # noqa: E402
from imgdag.batches import ArrayBatches  # noqa: E402
from imgdag.threads import use_threads  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", required=True, help="the array cache stem (write_files_cache's)")
    p.add_argument("--threads", type=int, required=True, help="torch threads")
    p.add_argument("--batch", type=int, required=True, help="images per batch")
    p.add_argument("--crop", type=int, nargs=2, required=True, metavar=("MIN", "MAX"), help="crop sides, pixels")
    p.add_argument("--mean", type=float, nargs=3, required=True, help="per-channel mean, RGB")
    p.add_argument("--std", type=float, nargs=3, required=True, help="per-channel std, RGB")
    args = p.parse_args()
    use_threads(args.threads)
    images, labels = read_array_cache(args.cache)
    augment = batch_augment(*args.crop, 0.0, mirror=True)
    batches = ArrayBatches(images, labels, args.batch, torch.device("cpu"), args.mean, args.std, shuffle=True,
                           seed=0, **augment)
    start, seen = time.perf_counter(), 0
    for _, y in batches.epoch(0):
        seen += len(y)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    for x, y in batches.epoch(0):
        digest.update(x.numpy().tobytes())
        digest.update(y.numpy().tobytes())
    print(json.dumps({"seconds": seconds, "images": seen, "digest": digest.hexdigest()}))


if __name__ == "__main__":
    main()
