#!/usr/bin/env python3
"""Write MXNet .lst image lists for a folder of images, as `im2rec.py --list` does; or, with
--from-map, PREFIX.lst with the rows of a CNTK map file (index = row number, same order)."""
from collections import Counter

from imgdag.cli import parser, run
from imgdag.formats.cntk_map import iter_cntk_map
from imgdag.formats.lst import IM2REC_EXTS, LstEntry, iter_image_folder, write_im2rec_lst_files, write_lst


def main():
    p = parser(__doc__)
    p.add_argument("prefix", help="output path without .lst (PREFIX.lst, PREFIX_train.lst, PREFIX_0.lst, ...)")
    p.add_argument("root", nargs="?", help="folder of images; .lst paths are relative to it")
    p.add_argument("--from-map", metavar="MAP", help="list the rows of this CNTK map file instead (no ROOT)")
    p.add_argument("--exts", nargs="+", default=list(IM2REC_EXTS), help="image suffixes, lower case")
    p.add_argument(
        "--recursive",
        action="store_true",
        help="walk subfolders; each folder with images is one class, labelled 0, 1, ... "
        "in sorted order (otherwise: the images directly in root, all label 0)",
    )
    p.add_argument(
        "--no-shuffle",
        dest="shuffle",
        action="store_false",
        help="keep the sorted order (im2rec shuffles with random.seed(100))",
    )
    p.add_argument("--chunks", type=int, default=1, help="number of chunks")
    p.add_argument("--train-ratio", type=float, default=1.0, help="fraction of each chunk for _train.lst")
    p.add_argument("--test-ratio", type=float, default=0.0, help="fraction of each chunk for _test.lst")
    args = p.parse_args()
    if args.from_map:
        if args.root:
            p.error("--from-map takes no ROOT")
        rows = iter_cntk_map(args.from_map)  # each row written as read: no list of the rows or entries
        entries = (LstEntry(i, (float(label),), path) for i, (path, label) in enumerate(rows))
        count = write_lst(f"{args.prefix}.lst", entries)
        print(f"wrote {count} entries of {args.from_map} to {args.prefix}.lst")
        return
    if not args.root:
        p.error("ROOT is required (or --from-map MAP)")
    classes = Counter()  # images per class label (a class folder's)

    def listed(entries):
        for entry in entries:
            classes[entry.labels] += 1
            yield entry

    passed_over = Counter()  # files not listed, by suffix
    entries = iter_image_folder(args.root, tuple(args.exts), args.recursive, passed_over)
    counts = write_im2rec_lst_files(args.prefix, listed(entries), args.shuffle, args.chunks, args.train_ratio,
                                    args.test_ratio)
    for path, count in counts.items():
        print(f"wrote {count} entries to {path}")
    others = "; ".join(f"{n} {what}" for what, n in sorted(passed_over.items()))
    print(f"listed {classes.total()} images in {len(classes)} classes under {args.root}; passed over: "
          + (f"{others} (--exts {' '.join(args.exts)})" if others else "none"))


if __name__ == "__main__":
    run(main)
