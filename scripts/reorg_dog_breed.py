"""Reorganise Kaggle dog-breed data into train/, valid/, train_valid/, test/unknown/ class folders,
optionally listed as .lst files (one per folder) plus classes.txt for the steps downstream."""
from pathlib import Path

from imgdag.cli import add_subset_argument, parser, run
from imgdag.formats.class_folders import list_class_folders, write_class_folders
from imgdag.formats.class_list import write_class_list
from imgdag.formats.lst import write_lst
from imgdag.imagecheck import add_check_arguments, from_arguments
from imgdag.layouts.dog_breed import read_dog_breed
from imgdag.layouts.records import EMPTY_CLASSES


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--raw", required=True, help="folder with train.zip (or train/), test.zip (or test/), "
                                                "labels.csv(.zip), sample_submission.csv(.zip)")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--valid-ratio", type=float, default=0.1,
                   help="valid images per class = max(1, floor(rarest class count * ratio))")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation pick")
    p.add_argument("--lists-dir", help="write FOLDER.lst for each folder (paths relative to --out) "
                                       "and classes.txt here")
    p.add_argument("--empty-classes", choices=EMPTY_CLASSES, default="error",
                   help="a listed class without a usable train image: error, or keep its label index and report it")
    add_check_arguments(p)
    add_subset_argument(p)
    args = p.parse_args()
    reading = read_dog_breed(args.raw, args.empty_classes, from_arguments(args), args.subset)
    counts = write_class_folders(reading, args.out, args.valid_ratio, args.seed)
    print(f"{args.raw} -> {args.out}: {counts.line()}; {len(reading.classes)} classes; "
          f"skipped: {reading.skipped_text()}")
    if args.lists_dir:
        for folder, entries in list_class_folders(args.out).items():
            write_lst(Path(args.lists_dir) / f"{folder}.lst", entries)
        write_class_list(Path(args.lists_dir) / "classes.txt", reading.classes)
        print(f"lists of the folders and classes.txt written to {args.lists_dir}")


if __name__ == "__main__":
    run(main)
