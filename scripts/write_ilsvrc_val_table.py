"""Write the ILSVRC2012 val table (file,ilsvrc2012_id,wnid,label) in a model's class order.

Source: the devkit (--devkit), or Caffe's --caffe-val + --synset-words (then --devkit, if
also given, only fills the ilsvrc2012_id column). Both give the same table.
"""
from imgdag.cli import add_subset_argument, parser, run
from imgdag.formats.class_list import read_class_list
from imgdag.formats.index_table import write_ilsvrc_val_table
from imgdag.imagecheck import add_check_arguments, from_arguments
from imgdag.layouts.ilsvrc_val import val_table_from_caffe, val_table_from_devkit


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--devkit", help="ILSVRC2012_devkit_t12 folder or .tar.gz (data/meta.mat + ground truth)")
    p.add_argument("--caffe-val", help="Caffe val.txt (NAME label)")
    p.add_argument("--synset-words", help="Caffe synset_words.txt (WNID words; line order = label order)")
    p.add_argument("--images", help="ILSVRC2012_img_val.tar or a folder of the images: keep only images present")
    p.add_argument("--classes", help="the model's class list (one WNID first on each line, e.g. synset_words.txt "
                                     "or an 8-WNID list); default: sorted leaf WNIDs / synset_words order")
    p.add_argument("--out", required=True, help="output CSV")
    add_check_arguments(p)
    add_subset_argument(p)
    args = p.parse_args()
    if bool(args.caffe_val) != bool(args.synset_words):
        p.error("--caffe-val and --synset-words go together")
    if not (args.devkit or args.caffe_val):
        p.error("give --devkit, or --caffe-val with --synset-words")
    classes = read_class_list(args.classes) if args.classes else None
    if args.caffe_val:
        table = val_table_from_caffe(args.caffe_val, args.synset_words, classes, args.images, args.devkit,
                                     from_arguments(args), args.subset)
    else:
        table = val_table_from_devkit(args.devkit, classes, args.images, from_arguments(args), args.subset)
    rows = write_ilsvrc_val_table(args.out, table.records("val"))
    source = "caffe val.txt" if args.caffe_val else "devkit"
    print(f"{args.out}: {rows} rows from the {source}, {len(table.classes)} classes; skipped: {table.skipped_text()}")


if __name__ == "__main__":
    run(main)
