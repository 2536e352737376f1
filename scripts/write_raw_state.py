"""Write the state of a raw folder that the jobs read in place (imgdag.layouts.tree.folder_state:
every file's name, size, time and inode, hashed; no image read). The file stands for the folder
as those jobs' input, so that Snakemake and DVC walk it once per run, not once per job."""
from imgdag.atomic import atomic_open
from imgdag.cli import parser, run
from imgdag.errors import DataError
from imgdag.layouts.tree import folder_state


def main():
    p = parser(__doc__)
    p.add_argument("raw", help="the raw folder (a params.yaml datasets path)")
    p.add_argument("out", help="the state file to write")
    args = p.parse_args()
    state = folder_state(args.raw)
    if not state:
        raise DataError(args.raw, "not a folder (a raw archive needs no state file)")
    with atomic_open(args.out, "w") as f:
        f.write(f"{state}\n")
    print(f"{args.raw}: {state}")


if __name__ == "__main__":
    run(main)
