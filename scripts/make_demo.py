"""Generate a small, learnable demo dataset in its real raw archive layout."""
import importlib
import time
from pathlib import Path

# first, before torch loads: the MNIST digits are warped with torch, whose kernels it pins to the
# default vector ISA (compute.cpu_isa's default), so every x86-64 CPU makes the same demo bytes
from imgdag.threads import check_cpu_isa  # isort: skip
from imgdag.atomic import atomic_dir
from imgdag.cli import parser, run

# dataset -> the module with its make_demo_<dataset>(out, seed), imported only when asked for
# (each demo rule lists its module as code input, so one demo's change reruns only that demo)
DEMOS = {
    "mnist": "imgdag.demo.mnist",                  # OUT/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    "imagenet8": "imgdag.demo.imagenet",           # OUT/imagenet-8.tar
    "tiny_imagenet": "imgdag.demo.tiny_imagenet",  # OUT/tiny-imagenet-200.zip
    "dog_breed": "imgdag.demo.dog_breed",          # OUT/{train.zip,test.zip,labels.csv,sample_submission.csv}
    "ilsvrc_val": "imgdag.demo.ilsvrc",            # OUT/{ILSVRC2012_img_val.tar,ILSVRC2012_devkit_t12.tar.gz,
                                                   #      caffe_ilsvrc12/{val.txt,synset_words.txt}}
}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("dataset", choices=sorted(DEMOS), help="which demo dataset")
    p.add_argument("out", help="output folder (replaced atomically)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    args = p.parse_args()
    start = time.perf_counter()
    if args.dataset == "mnist":
        check_cpu_isa()  # the same digits on any x86-64 CPU that has it
    with atomic_dir(args.out) as tmp:
        make = getattr(importlib.import_module(DEMOS[args.dataset]), f"make_demo_{args.dataset}")
        make(tmp, seed=args.seed)
        files = sorted(f for f in Path(tmp).rglob("*") if f.is_file())
        listing = ", ".join(f"{f.relative_to(tmp)} ({f.stat().st_size / 1024:.0f} KiB)" for f in files)
    print(f"{args.dataset} demo -> {args.out}: {len(files)} files written in "
          f"{time.perf_counter() - start:.1f} s: {listing}")


if __name__ == "__main__":
    run(main)
