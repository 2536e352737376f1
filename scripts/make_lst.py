#!/usr/bin/env python3
"""Write MXNet .lst image lists for a folder of images, as `im2rec.py --list` does; or, with
--from-map, PREFIX.lst with the rows of a CNTK map file (index = row number, same order)."""
from pathlib import Path

from imgdag.cli import parser, run
from imgdag.formats.cntk_map import iter_cntk_map
from imgdag.formats.lst import IM2REC_EXTS, LstEntry, im2rec_lst_files, list_image_folder, write_lst


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
    entries = list_image_folder(args.root, tuple(args.exts), args.recursive)
    classes = {str(Path(e.path).parent): int(e.labels[0]) for e in entries}
    files = im2rec_lst_files(args.prefix, entries, args.shuffle, args.chunks, args.train_ratio, args.test_ratio)
    for path, chunk in files.items():
        write_lst(path, chunk)
        print(f"wrote {len(chunk)} entries to {path}")
    print(f"listed {len(entries)} images in {len(classes)} classes under {args.root}")


if __name__ == "__main__":
    run(main)
