"""Write the class list (classes.txt, one class a line in label order) of a trained-model file."""
import imgdag.threads  # noqa: F401  first: OpenMP reads its wait policy when torch loads
from imgdag.cli import parser, run
from imgdag.formats.class_list import write_class_list
from imgdag.models import load_trained_model


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="trained-model file (from train.py)")
    p.add_argument("--out", required=True, help="class list file to write")
    args = p.parse_args()
    _, saved = load_trained_model(args.model, "cpu")
    write_class_list(args.out, saved["classes"])
    print(f"{args.out}: {len(saved['classes'])} classes of {args.model} ({saved['arch']})")


if __name__ == "__main__":
    run(main)
