"""Decode the images of a Tiny ImageNet index table (from write_tiny_index.py) once into a uint8
array cache: RGB (grayscale becomes 3 channels), rows in table order, labels -1 for test."""
from imgdag.arraycache import cache_paths, write_images_cache
from imgdag.cli import parser, run
from imgdag.codec import decode_rgb
from imgdag.formats.index_table import read_tiny_index
from imgdag.layouts.tree import open_tree


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--raw", required=True, help="tiny-imagenet-200.zip or its extracted folder "
                                                "(what the table's paths are relative to)")
    p.add_argument("--index", required=True, help="index table: train.csv, val.csv or test.csv")
    p.add_argument("--out", required=True,
                   help="cache stem: writes STEM.images.npy and STEM.labels.npy")
    args = p.parse_args()
    records = read_tiny_index(args.index)
    with open_tree(args.raw) as tree:
        items = ((tree.where(r.path),
                  decode_rgb(tree.read_bytes(r.path), tree.where(r.path)), r.label)
                 for r in records)
        n = write_images_cache(args.out, len(records), items, args.index)
    images, labels = cache_paths(args.out)
    print(f"{args.index}: {n} images from {args.raw} decoded into {images} and {labels}")


if __name__ == "__main__":
    run(main)
