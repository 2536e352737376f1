"""Decode the images of a Tiny ImageNet index table (from write_tiny_index.py) once into a uint8
array cache: RGB (grayscale becomes 3 channels), rows in table order, labels -1 for test.
Worker processes decode chunks straight into the memory-mapped output. The table lists only images
write_tiny_index.py checked (checks.bad_images); one that does not decode now is an error naming it."""
from imgdag.arraycache import cache_paths
from imgdag.arraycache_writer import write_files_cache
from imgdag.cli import parser, run
from imgdag.formats.index_table import read_tiny_index


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--raw", required=True, help="tiny-imagenet-200.zip or its extracted folder "
                                                "(what the table's paths are relative to)")
    p.add_argument("--index", required=True, help="index table: train.csv, val.csv or test.csv")
    p.add_argument("--out", required=True,
                   help="cache stem: writes STEM.images.npy and STEM.labels.npy")
    p.add_argument("--workers", type=int, default=1, help="decoding processes")
    args = p.parse_args()
    records = read_tiny_index(args.index)
    n = write_files_cache(args.out, args.raw, [r.path for r in records],
                          [r.label for r in records], args.index, workers=args.workers)
    images, labels = cache_paths(args.out)
    print(f"{args.index}: {n} images from {args.raw} decoded into {images} and {labels}")


if __name__ == "__main__":
    run(main)
