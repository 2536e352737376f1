"""Print a table of each recipe's headline metrics (the scalar values of results/*/metrics.json)."""
import json
from pathlib import Path

from imgdag.cli import parser, run


def flatten(metrics: dict, prefix: str = "") -> dict:
    """Scalar values with dotted keys; nested per-class tables are left to the JSON."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict) and key != "per_class_accuracy":
            flat.update(flatten(value, f"{prefix}{key}."))
        elif not isinstance(value, (dict, list)):
            flat[f"{prefix}{key}"] = value
    return flat


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--results", default="results", help="folder with one subfolder per recipe")
    p.add_argument("--recipe", help="only this recipe (default: every recipe with metrics)")
    args = p.parse_args()
    files = sorted(Path(args.results).glob(f"{args.recipe or '*'}/metrics.json"))
    if not files:
        print(f"no metrics under {args.results}/ yet: run `snakemake --cores all`")
        return
    for path in files:
        print(f"\n{path.parent.name} ({path})")
        for key, value in flatten(json.loads(path.read_text())).items():
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            print(f"  {key:<40} {shown}")


if __name__ == "__main__":
    run(main)
