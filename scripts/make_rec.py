#!/usr/bin/env python3
"""Pack the images of an MXNet .lst into RecordIO .rec + .idx, as im2rec.py does; or, with
--rebuild-index, write the .idx of an existing .rec."""
from pathlib import Path

from imgdag.cli import parser, run
from imgdag.formats.recordio_packer import PackOptions, pack
from imgdag.formats.recordio_writer import rebuild_index
from imgdag.imagecheck import add_bad_images_argument


def main():
    p = parser(__doc__)
    p.add_argument("lst", nargs="?", help="the .lst to pack")
    p.add_argument("root", nargs="?", help="folder the .lst paths are relative to")
    p.add_argument("--rec", help="output .rec (default: the .lst path with .rec)")
    p.add_argument("--idx", help="output .idx (default: the .rec path with .idx)")
    p.add_argument("--rebuild-index", metavar="REC", help="only write the .idx of this .rec (keys: record ids)")
    p.add_argument("--resize", type=int, default=0, help="resize the shorter side to this many pixels (0: keep)")
    p.add_argument("--center-crop", action="store_true", help="crop the central square first")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality 1-100, or PNG compression level 0-9")
    p.add_argument("--encoding", choices=[".jpg", ".png"], default=".jpg", help="image encoding in the records")
    p.add_argument("--pass-through", action="store_true", help="copy the image files' bytes unchanged")
    p.add_argument(
        "--color", type=int, choices=[-1, 0, 1], default=1, help="1: colour, 0: grayscale, -1: as stored, alpha kept"
    )
    p.add_argument(
        "--images-checked", action="store_true",
        help="with --pass-through: the step that listed the images already checked them (checks.bad_images), "
             "so copy them without decoding again",
    )
    p.add_argument("--num-workers", type=int, default=1, help="processes reading and checking or encoding images")
    add_bad_images_argument(p)
    args = p.parse_args()

    if args.rebuild_index:
        if args.lst or args.root:
            p.error("--rebuild-index takes no LST or ROOT")
        idx = args.idx or Path(args.rebuild_index).with_suffix(".idx")
        count = rebuild_index(args.rebuild_index, idx)
        print(f"indexed {count} records of {args.rebuild_index} in {idx}")
        return
    if not (args.lst and args.root):
        p.error("LST and ROOT are required (or --rebuild-index REC)")
    rec = Path(args.rec or Path(args.lst).with_suffix(".rec"))
    idx = args.idx or rec.with_suffix(".idx")
    options = PackOptions(args.resize, args.center_crop, args.quality, args.encoding, args.pass_through, args.color,
                          args.images_checked)
    print(pack(args.lst, args.root, rec, idx, options, args.num_workers, args.bad_images))


if __name__ == "__main__":
    run(main)
