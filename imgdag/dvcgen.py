"""dvc.yaml generated from the Snakemake DAG: one DVC stage per Snakemake job.

Snakemake is the one source of truth. Each stage's deps are the job's inputs (data and the
code files the rule lists), its params are the params.yaml sections the rule's `section()`
params name, its outs are the job's outputs (metrics and plots marked in the rules are
`cache: false`), and its cmd asks Snakemake for exactly those outputs. The cmd ends with a
hash of the rule's shell command, so DVC reruns a stage when its rule's command changes,
as Snakemake does. `dvc repro` deletes only a stage's own outs, so Snakemake never rebuilds
upstream work.

Raw dataset paths are written as DVC templates (`${datasets.mnist.raw_dir}/...`), so a new
path in params.yaml reaches `dvc repro` without regenerating this file. Each recipe gets a
stage of its own name whose deps are the recipe's final outputs (the recipe's Snakemake target
rule): `dvc repro mnist_lenet5` and `dvc exp run mnist_lenet5` touch that recipe only.
"""
import hashlib
from pathlib import Path

import yaml

HEADER = ("# Generated from the Snakemake rules by scripts/write_dvc_yaml.py; do not edit.\n"
          "# `make dvc-yaml` rewrites it; tests/test_dvc_yaml.py fails when it is stale.\n")


def _snakemake_jobs(root: Path, targets):
    """The jobs of the DAG for `targets` (all of them, as if forced) and the Snakefile globals.
    The demo rules are targets too, so dvc.yaml keeps their stages whatever the raw paths."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                                    snakefile=root / "Snakefile", workdir=root)
        workflow_api.dag(DAGSettings(targets=set(targets), forceall=True))
        workflow = workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True,
                              nolock=True)
        workflow._build_dag()
        # by name, not by DAG level: a raw path that skips the demo moves jobs between levels
        return sorted(workflow.dag.jobs, key=_stage_name), workflow.globals


def _stage_name(job) -> str:
    return "-".join([job.rule.name, *map(str, job.wildcards)])


def pipeline_from_snakemake(root=".", targets=("all", "demo")) -> dict:
    """dvc.yaml's content (stages, plots) for the Snakemake DAG of `targets`."""
    jobs, names = _snakemake_jobs(Path(root).resolve(), targets)
    metrics, plots = names["DVC_METRICS"], names["DVC_PLOTS"]
    templates = _dataset_templates(names["config"]["datasets"])
    stages = {}
    for job in jobs:
        outputs = [str(f) for f in job.output]
        if not outputs:  # target rules such as `all`
            continue
        shell_hash = hashlib.sha256(str(job.rule.shellcmd).encode()).hexdigest()[:12]
        stage = {"cmd": f"snakemake --cores all {' '.join(outputs)}  # rule {job.rule.name} "
                        f"shell {shell_hash}"}
        deps = sorted({_templated(str(f), templates) for f in job.input})
        if deps:
            stage["deps"] = deps
        keys = sorted(v.key for v in job.rule.params if getattr(v, "key", ""))
        if keys:
            stage["params"] = keys
        # plot data are plain outs kept in git: drawn only as the top-level plots say (a
        # stage-level plot would also draw every other column, such as seconds, against step)
        outs = [f if f not in plots else {f: {"cache": False}} for f in outputs
                if f not in metrics]
        if outs:
            stage["outs"] = outs
        marked = [{f: {"cache": False}} for f in outputs if f in metrics]
        if marked:
            stage["metrics"] = marked
        stages[_stage_name(job)] = stage
    for recipe, files in names["RECIPE_TARGETS"].items():
        stages[recipe] = {"cmd": f"python scripts/show_metrics.py --recipe {recipe}",
                          "deps": list(files)}
    # what to draw (x and several y columns) belongs to the top-level plots section
    drawn = [{path: {"x": opts["x"], "y": opts["y"] if isinstance(opts["y"], str) else list(opts["y"]),
                     "template": opts["template"]}} for path, opts in sorted(plots.items())]
    return {"stages": stages, "plots": drawn}


def _dataset_templates(datasets: dict) -> list[tuple[str, str]]:
    """(path, `${datasets.name.key}`) for every raw path in params.yaml's datasets, longest first."""
    found = [(value.rstrip("/"), f"${{datasets.{name}.{key}}}")
             for name, entries in datasets.items() for key, value in entries.items()
             if isinstance(value, str) and ("/" in value or "." in value)]
    return sorted(found, key=lambda item: -len(item[0]))


def _templated(path: str, templates) -> str:
    """`path` with a leading raw dataset path replaced by its params.yaml template."""
    for value, template in templates:
        if path == value or path.startswith(value + "/"):
            return template + path[len(value):]
    return path


def render_dvc_yaml(pipeline: dict) -> str:
    """dvc.yaml text for the stages and plots of `pipeline`."""
    return HEADER + yaml.safe_dump(pipeline, sort_keys=False, width=100)
