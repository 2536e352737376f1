"""Convert the Caffe/Toronto `bvlc_alexnet.npy` into a CaffeAlexNet PyTorch weight file."""
import imgdag.threads  # noqa: F401  first: OpenMP reads its wait policy when torch loads
from imgdag.atomic import atomic_torch_save
from imgdag.cli import parser, run
from imgdag.models.caffe_alexnet import state_dict_from_npy


def main() -> None:
    p = parser(__doc__)
    p.add_argument("npy", help="bvlc_alexnet.npy (dict layer -> [W, b], TensorFlow layout)")
    p.add_argument("out", help="output .pth: {'model': state_dict, 'num_classes': N, 'arch': 'caffe_alexnet'}")
    args = p.parse_args()
    state, num_classes = state_dict_from_npy(args.npy)
    atomic_torch_save({"model": state, "num_classes": num_classes, "arch": "caffe_alexnet"}, args.out)
    print(f"{args.out}: caffe_alexnet, {num_classes} classes")


if __name__ == "__main__":
    run(main)
