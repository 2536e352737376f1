"""Frozen-backbone features of the images listed in .lst files, computed once per (backbone, weight
file, size, image list) in a cache folder and copied to one features file (imgdag.transfer)."""
import shutil

import imgdag.threads  # noqa: F401  first: OpenMP reads its wait policy when torch loads

from imgdag.atomic import atomic_path
from imgdag.cli import json_object, parser, run
from imgdag.engine import select_device
from imgdag.formats.lst import read_lst
from imgdag.threads import add_thread_arguments, start_threads
from imgdag.transfer import cached_features, read_features_file


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--backbone", required=True, type=json_object,
                   help='one backbones entry of params.yaml: {"name", "weights", "size"}')
    p.add_argument("--params", type=json_object, default={},
                   help="the recipe's features section: batch_size, num_workers, device")
    p.add_argument("--root", required=True, help="folder the .lst paths are relative to")
    p.add_argument("--lists", required=True, nargs="+", help=".lst files; features in their order")
    p.add_argument("--cache-dir", required=True,
                   help="where features are kept by cache key (survives reruns)")
    p.add_argument("--out", required=True, help="features file to write (a copy of its cache)")
    add_thread_arguments(p)
    args = p.parse_args()
    start_threads(args, 0)
    name, weights, size = (args.backbone[k] for k in ("name", "weights", "size"))
    images = [entry.path for path in args.lists for entry in read_lst(path)]
    device = select_device(args.params.get("device", "auto"))
    features, _, cache = cached_features(
        name, weights, args.root, images, args.cache_dir, size=size,
        batch_size=args.params.get("batch_size", 32), device=device,
        num_workers=args.params.get("num_workers", 0))
    with atomic_path(args.out) as tmp:
        shutil.copyfile(cache, tmp)
    sha = read_features_file(cache, mmap=True)["weights_sha256"]
    weights_text = f"weights {weights} (sha256 {sha[:12]})" if sha != "random" else \
        f"RANDOM weights ({weights} is absent: pretrained false)"
    print(f"{name} at {size} px, {weights_text}: {features.shape[0]} images -> "
          f"{features.shape[1]} features each, cached in {cache}, copied to {args.out}")


if __name__ == "__main__":
    run(main)
