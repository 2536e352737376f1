"""Write CNTK map files (train_map.txt, val_map.txt, classes.txt) from ImageNet class folders."""
from contextlib import ExitStack
from pathlib import Path

from imgdag.atomic import atomic_path
from imgdag.cli import add_subset_argument, parser, run
from imgdag.formats.class_list import read_class_list, write_class_list
from imgdag.formats.cntk_map_writer import write_cntk_map
from imgdag.imagecheck import add_check_arguments, from_arguments
from imgdag.layouts.imagenet_folders import ImagenetFolders
from imgdag.layouts.records import EMPTY_CLASSES, skipped_text

MAP_NAMES = {"train": "train_map.txt", "validation": "val_map.txt"}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--raw", required=True,
                   help="folder (or .tar) with train/<wnid>/*.JPEG and validation/<wnid>/*.JPEG")
    p.add_argument("--out", required=True, help="output folder for train_map.txt, val_map.txt, classes.txt")
    p.add_argument("--image-root", help="write absolute paths under this folder (the extracted --raw); "
                                        "default: paths relative to --raw")
    p.add_argument("--classes", help="class list file (one WNID a line); default: sorted train/ WNIDs")
    p.add_argument("--empty-classes", choices=EMPTY_CLASSES, default="error",
                   help="a listed class without a usable train image: error, or keep its label index and report it")
    add_check_arguments(p)
    add_subset_argument(p)
    args = p.parse_args()
    classes = read_class_list(args.classes) if args.classes else None
    folders = ImagenetFolders(args.raw, MAP_NAMES, classes=classes, empty_classes=args.empty_classes,
                              check=from_arguments(args), subset=args.subset)
    out = Path(args.out)
    written, made = [], not out.exists()
    with ExitStack() as outputs:  # renamed into place together, once every map is whole
        outputs.callback(lambda: made and out.is_dir() and not any(out.iterdir()) and out.rmdir())  # none on failure
        for split, name in MAP_NAMES.items():
            lines = write_cntk_map(outputs.enter_context(atomic_path(out / name)), folders.records(split),
                                   args.image_root)
            written.append(f"{name} {lines} lines")
        write_class_list(outputs.enter_context(atomic_path(out / "classes.txt")), folders.classes)
    print(f"{args.raw} -> {out}: {', '.join(written)}, {len(folders.classes)} classes; "
          f"skipped: {skipped_text(folders.skipped)}")


if __name__ == "__main__":
    run(main)
