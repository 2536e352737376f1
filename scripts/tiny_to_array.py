"""Decode the images of a Tiny ImageNet index table (from write_tiny_index.py) once into a uint8
array cache: RGB (grayscale becomes 3 channels), rows in table order, labels -1 for test, and
STEM.index.csv, the index table of the rows the cache holds. Worker processes decode chunks
straight into the memory-mapped output, sharing one listing of --raw. That one decode is the
images' check (checks.bad_images): an image that does not decode is skipped (counted, named in a
warning, left out of the cache and of STEM.index.csv) or stops the step with an error naming it.
A class of the table whose every image is skipped is an error (checks.empty_classes: keep keeps
its label index and reports it)."""
from pathlib import Path

from imgdag.arraycache import cache_paths
from imgdag.arraycache_writer import write_files_cache
from imgdag.cli import parser, run
from imgdag.errors import DataError
from imgdag.formats.index_table import read_tiny_index, write_tiny_index
from imgdag.imagecheck import add_bad_images_argument, warn_skipped
from imgdag.layouts.records import EMPTY_CLASSES
from imgdag.layouts.tree import open_tree


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--raw", required=True, help="tiny-imagenet-200.zip or its extracted folder "
                                                "(what the table's paths are relative to)")
    p.add_argument("--index", required=True, help="index table: train.csv, val.csv or test.csv")
    p.add_argument("--out", required=True,
                   help="cache stem: writes STEM.images.npy, STEM.labels.npy and STEM.index.csv")
    add_bad_images_argument(p)
    p.add_argument("--empty-classes", choices=EMPTY_CLASSES, default="error",
                   help="a class of the table whose every image is skipped: error, or keep its label "
                        "index and report it")
    p.add_argument("--workers", type=int, default=1, help="decoding processes")
    args = p.parse_args()
    records = read_tiny_index(args.index)
    with open_tree(args.raw) as tree:
        skipped = write_files_cache(args.out, tree, [r.path for r in records], [r.label for r in records],
                                    args.index, args.bad_images, args.workers)
    kept = [r for row, r in enumerate(records) if row not in skipped]
    reported = [f"{len(skipped)} images that do not decode"] if skipped else []
    emptied = sorted({r.wnid for r in records} - {r.wnid for r in kept})
    if emptied:
        shown = ", ".join(emptied[:5]) + (", ..." if len(emptied) > 5 else "")
        if args.empty_classes != "keep":
            for path in cache_paths(args.out):
                path.unlink()
            raise DataError(args.index, f"{len(emptied)} classes have no image that decodes ({shown}); "
                                        "fix the data, or keep their label indices with empty_classes: keep")
        reported.append(f"{len(emptied)} classes without an image that decodes, label index kept ({shown})")
    rows = Path(f"{args.out}.index.csv")
    write_tiny_index(rows, kept)
    warn_skipped(args.index, list(skipped.values()))
    images, labels = cache_paths(args.out)
    print(f"{args.index}: {len(kept)} images from {args.raw} decoded into {images} and {labels}, "
          f"their rows in {rows}; skipped: {'; '.join(reported) or 'none'}")


if __name__ == "__main__":
    run(main)
