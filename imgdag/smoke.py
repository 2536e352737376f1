"""A smoke run: `snakemake --config subset=N <recipe>` runs a recipe end to end on the first N
images of each class, in a folder of its own.

The switch is Snakemake's only, not a params.yaml key: DVC's stages and the full run's params
stay as they are. With it the Snakefile
- checks N (`subset_problem`) with the rest of the config;
- reads every relative raw path (params.yaml's datasets and weight files) from the project
  folder (`read_from_project`), except what the workflow makes itself: the demo data
  (`data/demo/...`) and the model `ilsvrc_alexnet_eval` evaluates by default (`results/...`),
  which the smoke run makes for itself;
- works in `smoke/subset-N` (Snakemake's `workdir:`): the smoke run's data/, results/, logs/
  and .snakemake/ lie there, apart from the full run's; the project's scripts/ and imgdag/,
  which the rules name by relative path, are linked into it (`link_sources`);
- gives every job N in the environment (imgdag.cli.SUBSET_ENV, rules/common.smk), the default
  of the layout readers' `--subset`: each reader keeps the first N images of each class by name
  (imgdag.layouts.records.first_per_class) before anything decodes them.
Archives are still extracted whole (imagenet8's tar, the ILSVRC val tar): point the dataset at
an extracted folder to skip that on a large one.
"""
import os
from pathlib import Path

from imgdag.config import raw_paths

# relative paths a rule of the workflow makes: a smoke run makes its own
MADE_BY_THE_WORKFLOW = ("data/demo/", "results/")
SOURCES = ("scripts", "imgdag")  # what the rules name by relative path besides their own outputs


def subset_problem(value) -> str | None:
    """A line naming what is wrong with --config subset=VALUE, or None when it is a positive
    whole number."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return None
    return (f"subset: {value!r} is not a positive whole number (a smoke run's images per class: "
            "--config subset=N)")


def smoke_dir(n: int) -> str:
    """The folder a smoke run of `n` images per class works in, relative to the project."""
    return f"smoke/subset-{n}"


def _from_project(path: str, project: Path) -> str:
    normal = os.path.normpath(path)
    if os.path.isabs(path) or normal.startswith(MADE_BY_THE_WORKFLOW):
        return path
    return str(project / normal)


def read_from_project(config: dict, project: Path) -> None:
    """Make the config's relative raw paths (datasets, weight files) absolute under `project`,
    except those the workflow makes (MADE_BY_THE_WORKFLOW); in place."""
    for key in raw_paths(config["datasets"]):
        *parents, last = key.split(".")
        entry = config
        for part in parents:
            entry = entry[part]
        entry[last] = _from_project(entry[last], project)
    for backbone in config["recipes"]["dog_breed_transfer"]["backbones"]:
        backbone["weights"] = _from_project(backbone["weights"], project)
    weights = config["recipes"]["ilsvrc_alexnet_eval"]["weights"]
    weights["path"] = _from_project(weights["path"], project)


def link_sources(workdir: Path, project: Path) -> None:
    """Link the project's SOURCES into `workdir` (relative links; a wrong one is replaced)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        link, target = workdir / name, os.path.relpath(project / name, workdir)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        temporary = workdir / f".{name}.link-{os.getpid()}"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(target)
        os.replace(temporary, link)
