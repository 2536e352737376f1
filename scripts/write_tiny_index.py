"""Write Tiny ImageNet index tables (train.csv, val.csv, test.csv: file,label,wnid,x0,y0,x1,y1) and classes.txt.
The tables list the images the layout holds; no image is decoded here: tiny_to_array.py's one decode
of each image is its check (checks.bad_images)."""
from pathlib import Path

from imgdag.cli import add_subset_argument, parser, run
from imgdag.formats.class_list import write_class_list
from imgdag.formats.index_table import write_tiny_index
from imgdag.layouts.records import EMPTY_CLASSES
from imgdag.layouts.tiny_imagenet import read_tiny_imagenet


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--raw", required=True, help="tiny-imagenet-200.zip or its extracted folder")
    p.add_argument("--out", required=True, help="output folder; file paths in the tables are relative to --raw "
                                                "(or to the folder --raw extracts to)")
    p.add_argument("--empty-classes", choices=EMPTY_CLASSES, default="error",
                   help="a listed class without a usable train image: error, or keep its label index and report it")
    add_subset_argument(p)
    args = p.parse_args()
    reading = read_tiny_imagenet(args.raw, args.empty_classes, args.subset)
    out = Path(args.out)
    written = [f"{split}.csv {write_tiny_index(out / f'{split}.csv', reading.records(split))} rows"
               for split in ("train", "val", "test")]
    write_class_list(out / "classes.txt", reading.classes)
    print(f"{args.raw} -> {out}: {', '.join(written)}, {len(reading.classes)} classes (sorted WNIDs); "
          f"skipped: {reading.skipped_text()}")


if __name__ == "__main__":
    run(main)
