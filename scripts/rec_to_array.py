"""Decode every record of a RecordIO file once into a uint8 array cache (memory-mapped .npy)."""
from imgdag.arraycache import cache_paths
from imgdag.arraycache_writer import write_array_cache
from imgdag.cli import parser, run


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--rec", required=True, help="the .rec file")
    p.add_argument("--idx", help="its .idx (scanned from the .rec when absent)")
    p.add_argument("--out", required=True,
                   help="cache stem: writes STEM.images.npy and STEM.labels.npy")
    args = p.parse_args()
    n = write_array_cache(args.rec, args.idx, args.out)
    images, labels = cache_paths(args.out)
    print(f"{args.rec}: {n} images decoded into {images} and {labels}; 0 skipped")


if __name__ == "__main__":
    run(main)
