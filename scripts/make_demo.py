"""Generate a small, learnable demo dataset in its real raw archive layout."""
import time
from pathlib import Path

from imgdag.atomic import atomic_dir
from imgdag.cli import parser, run
from imgdag.demo.dog_breed import make_demo_dog_breed
from imgdag.demo.ilsvrc import make_demo_ilsvrc_val
from imgdag.demo.imagenet import make_demo_imagenet8
from imgdag.demo.mnist import make_demo_mnist
from imgdag.demo.tiny_imagenet import make_demo_tiny_imagenet

DEMOS = {
    "mnist": make_demo_mnist,                  # OUT/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    "imagenet8": make_demo_imagenet8,          # OUT/imagenet-8.tar
    "tiny_imagenet": make_demo_tiny_imagenet,  # OUT/tiny-imagenet-200.zip
    "dog_breed": make_demo_dog_breed,          # OUT/{train.zip,test.zip,labels.csv,sample_submission.csv}
    "ilsvrc_val": make_demo_ilsvrc_val,        # OUT/{ILSVRC2012_img_val.tar,ILSVRC2012_devkit_t12.tar.gz,
                                               #      caffe_ilsvrc12/{val.txt,synset_words.txt}}
}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("dataset", choices=sorted(DEMOS), help="which demo dataset")
    p.add_argument("out", help="output folder (replaced atomically)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    args = p.parse_args()
    start = time.perf_counter()
    with atomic_dir(args.out) as tmp:
        DEMOS[args.dataset](tmp, seed=args.seed)
        files = sorted(f for f in Path(tmp).rglob("*") if f.is_file())
        listing = ", ".join(f"{f.relative_to(tmp)} ({f.stat().st_size / 1024:.0f} KiB)" for f in files)
    print(f"{args.dataset} demo -> {args.out}: {len(files)} files written in "
          f"{time.perf_counter() - start:.1f} s: {listing}")


if __name__ == "__main__":
    run(main)
