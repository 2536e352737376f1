"""Keep Snakemake's and DVC's views of the results in step, without rerunning anything.

record    after `snakemake`: record the finished recipes in dvc.lock (`dvc commit`), once
          `snakemake -n` confirms they are current; then `dvc status` is clean and neither
          `dvc repro` nor `snakemake -n` has anything to do. With the cache hardlinking
          (.dvc/config) each file is moved into the cache as it is and keeps its time; where
          DVC has to copy (a cache on another file system), the copies get new times in no
          order, and record touches every job's outputs in pipeline order again (DVC then
          reads each output once more, at its next look: a touched file's hash is not known).
checkout  on a fresh clone: `dvc checkout` (or `--pull`: `dvc pull`) the recipes, then, once
          `dvc status` confirms the files are the recorded ones, touch every job of the recipes
          (`snakemake --touch --forceall`): DVC restores files with new times in no order, and
          Snakemake records each job's params and code as they are now. Also the one command
          after going back to a committed state (`git checkout <commit> && make checkout`):
          without it Snakemake compares with the params of its last run, not the commit's.
baseline  `dvc repro` every recipe, check `dvc status` is clean, and print the `git add` of
          dvc.lock and the files DVC leaves to git (metrics, plot data: `cache: false`); once
          committed, a fresh clone's `dvc metrics diff` compares against them.
"""
import json
import subprocess
import sys
from pathlib import Path

import yaml

from imgdag.cli import parser, run

RECIPES = ["mnist_lenet5", "imagenet8_alexnet", "ilsvrc_alexnet_eval", "tiny_imagenet_resnet18",
           "dog_breed_transfer"]


class SyncError(Exception):
    """A door is not in the state the action needs; the message says what to run."""


def _run(args: list[str]) -> str:
    """Run a command, echoing it; its stdout, or an error naming it with its output."""
    print("+", " ".join(args), flush=True)
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise SyncError(f"`{' '.join(args)}` exited {done.returncode}:\n"
                        f"{(done.stdout + done.stderr).strip()}")
    return done.stdout


def snakemake_is_current(recipes: list[str]) -> bool:
    """True when `snakemake -n` has no job to run for the recipes' targets."""
    return "Nothing to be done" in _run(["snakemake", "--dry-run", *recipes])


def dvc_is_current(recipes: list[str]) -> bool:
    """True when `dvc status` finds the recipes' stages and everything upstream unchanged."""
    return json.loads(_run(["dvc", "status", "--json", "--with-deps", *recipes])) == {}


def touch_in_pipeline_order(recipes: list[str]) -> None:
    """`snakemake --touch` every job of the recipes: their outputs get modification times in
    pipeline order, so Snakemake needs no checksum of a restored file (the profiles checksum only
    small inputs), and it records each job's params and code as they are now. Every job, not only
    those it finds out of date: a job it skips keeps the params of its last run (or none, in a
    fresh clone), and a later params change would go unseen."""
    _run(["snakemake", "--touch", "--forceall", "--cores", "1", *recipes])
    if not snakemake_is_current(recipes):
        raise SyncError("snakemake -n still plans jobs after --touch (see `snakemake -n`)")


def record(recipes: list[str]) -> None:
    if not recipes:
        raise SyncError("no recipe has results yet: run `snakemake --cores all` first")
    if not snakemake_is_current(recipes):
        raise SyncError(f"Snakemake has jobs left for {' '.join(recipes)}: run "
                        f"`snakemake --cores all {' '.join(recipes)}` first, then record")
    _run(["dvc", "commit", "--force", "--with-deps", *recipes])
    if not snakemake_is_current(recipes):  # the cache copied the files: new times, no order
        touch_in_pipeline_order(recipes)
    if not dvc_is_current(recipes):
        raise SyncError("dvc status is not clean after dvc commit (see `dvc status`)")
    print(f"recorded in dvc.lock: {' '.join(recipes)}; commit it with the metrics "
          "(`git add dvc.lock results/`), push the data with `dvc push`")


def checkout(recipes: list[str], pull: bool) -> None:
    if not recipes:
        raise SyncError("dvc.lock records no recipe: nothing to check out")
    _run(["dvc", "pull" if pull else "checkout", "--with-deps", *recipes])
    if not dvc_is_current(recipes):
        raise SyncError("dvc status is not clean after checkout: the workspace differs from "
                        "dvc.lock (changed params or code?); run `dvc repro` instead")
    touch_in_pipeline_order(recipes)
    print(f"restored {' '.join(recipes)}: `dvc status` and `snakemake -n` have nothing to do")


def git_kept_outputs(dvc_yaml="dvc.yaml") -> list[str]:
    """The stage outputs marked `cache: false` in dvc.yaml: DVC leaves them to git."""
    stages = yaml.safe_load(Path(dvc_yaml).read_text())["stages"].values()
    return sorted(path for stage in stages for kind in ("outs", "metrics")
                  for item in stage.get(kind, []) if isinstance(item, dict)
                  for path, options in item.items() if options.get("cache") is False)


def baseline() -> None:
    _run(["dvc", "repro", *RECIPES])
    if not dvc_is_current(RECIPES):
        raise SyncError("dvc status is not clean after dvc repro (see `dvc status`)")
    print("the baseline is in dvc.lock; commit it with what DVC leaves to git:\n  git add "
          + " ".join(["dvc.lock", *git_kept_outputs()]) + ' && git commit -m "Demo baseline"')


def main() -> None:
    p = parser(__doc__)
    p.add_argument("action", choices=["record", "checkout", "baseline"])
    p.add_argument("recipes", nargs="*", metavar="RECIPE",
                   help=f"some of {', '.join(RECIPES)} (default: record: those with "
                        "results/<recipe>/metrics.json; checkout: those in dvc.lock)")
    p.add_argument("--pull", action="store_true", help="checkout: `dvc pull` from the remote")
    args = p.parse_intermixed_args()
    unknown = sorted(set(args.recipes) - set(RECIPES))
    if unknown:
        p.error(f"unknown recipe {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    if args.action == "baseline":
        if args.recipes:
            p.error("baseline takes no recipes: it runs them all")
        baseline()
    elif args.action == "record":
        record(args.recipes or [r for r in RECIPES if Path(f"results/{r}/metrics.json").exists()])
    else:
        locked = yaml.safe_load(Path("dvc.lock").read_text())["stages"] if Path("dvc.lock").exists() else {}
        checkout(args.recipes or [r for r in RECIPES if r in locked], args.pull)


if __name__ == "__main__":
    try:
        run(main)
    except SyncError as e:
        sys.exit(f"error: {e}")
