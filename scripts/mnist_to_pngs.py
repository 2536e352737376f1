"""Write one MNIST split (idx .gz files) as NNNNNN_<label>.png files plus an MXNet .lst."""
from imgdag.cli import add_subset_argument, parser, run
from imgdag.formats.image_files import write_labelled_pngs
from imgdag.layouts.mnist_idx import read_split


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--raw", required=True, help="folder with the four MNIST idx .gz files")
    p.add_argument("--split", required=True, choices=["train", "test"])
    p.add_argument("--out-dir", required=True, help="folder for the PNGs (replaced atomically)")
    p.add_argument("--lst", required=True, help="the .lst to write (paths relative to the "
                                                "parent of --out-dir)")
    add_subset_argument(p)
    args = p.parse_args()
    images, labels = read_split(args.raw, args.split, args.subset)
    n = write_labelled_pngs(images, labels, args.out_dir, args.lst)
    subset = f" (a smoke run: the first {args.subset} of each digit)" if args.subset else ""
    print(f"mnist {args.split}: {n} images written to {args.out_dir}, listed in {args.lst}; "
          f"0 skipped{subset}")


if __name__ == "__main__":
    run(main)
