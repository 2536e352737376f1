"""Write dvc.yaml from the Snakemake rules (one DVC stage per job), or --check it is current."""
import sys
from pathlib import Path

from imgdag.cli import parser, run
from imgdag.dvcgen import dvc_yaml_from_snakemake, render_dvc_yaml


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--root", default=".", help="the repository root (with Snakefile)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if dvc.yaml differs from what the rules give; write nothing")
    args = p.parse_args()
    doc = dvc_yaml_from_snakemake(args.root)
    text = render_dvc_yaml(doc)
    path = Path(args.root) / "dvc.yaml"
    if args.check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is stale: run `make dvc-yaml` and commit it", file=sys.stderr)
            sys.exit(1)
        print(f"{path} matches the Snakemake rules")
        return
    path.write_text(text)
    print(f"{path}: {len(doc['stages'])} stages written from the Snakemake DAG")


if __name__ == "__main__":
    run(main)
