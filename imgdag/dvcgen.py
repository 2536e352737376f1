"""dvc.yaml generated from the Snakemake DAG: one DVC stage per Snakemake job.

Snakemake is the one source of truth. Each stage's deps are the job's inputs (data and the
code files the rule lists), its params are the params.yaml sections the rule's `section()`
params name, its outs are the job's outputs (metrics and plots marked in the rules are
`cache: false`; a plot's x and y columns go in the top-level `plots`, the one place DVC takes
several y columns), and its cmd asks Snakemake for exactly those outputs. The cmd ends with a
hash of the rule's shell command, so DVC reruns a stage when its rule's command changes,
as Snakemake does. `dvc repro` deletes only a stage's own outs, so Snakemake never rebuilds
upstream work.
"""
import hashlib
from pathlib import Path

import yaml

HEADER = ("# Generated from the Snakemake rules by scripts/write_dvc_yaml.py; do not edit.\n"
          "# `make dvc-yaml` rewrites it; tests/test_dvc_yaml.py fails when it is stale.\n")


def _snakemake_jobs(root: Path, targets):
    """The jobs of the DAG for `targets` (all of them, as if forced) and the Snakefile globals."""
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
        levels = [sorted(level, key=_stage_name) for level in workflow.dag.toposorted()]
        return [job for level in levels for job in level], workflow.globals


def _stage_name(job) -> str:
    return "-".join([job.rule.name, *map(str, job.wildcards)])


def dvc_yaml_from_snakemake(root=".", targets=("all",)) -> dict:
    """dvc.yaml's `stages` and `plots` for the Snakemake DAG of `targets`."""
    jobs, names = _snakemake_jobs(Path(root).resolve(), targets)
    metrics, plots = names["DVC_METRICS"], names["DVC_PLOTS"]
    stages, plot_defs = {}, []
    for job in jobs:
        outputs = [str(f) for f in job.output]
        if not outputs:  # target rules such as `all`
            continue
        shell_hash = hashlib.sha256(str(job.rule.shellcmd).encode()).hexdigest()[:12]
        stage = {"cmd": f"snakemake --cores all {' '.join(outputs)}  # rule {job.rule.name} "
                        f"shell {shell_hash}"}
        deps = sorted({str(f) for f in job.input})
        if deps:
            stage["deps"] = deps
        # a job's plain-string params come back as str: their keys are on the rule's params
        keys = sorted({v.key for v in [*job.rule.params, *job.params] if getattr(v, "key", "")})
        if keys:
            stage["params"] = keys
        outs = [f if f not in plots else {f: {"cache": False}}
                for f in outputs if f not in metrics]
        if outs:
            stage["outs"] = outs
        marked = [{f: dict(metrics[f])} for f in outputs if f in metrics]
        if marked:
            stage["metrics"] = marked
        plot_defs += [{f: {"x": plots[f]["x"], "y": plots[f]["y"]}} for f in outputs if f in plots]
        stages[_stage_name(job)] = stage
    return {"stages": stages, "plots": plot_defs} if plot_defs else {"stages": stages}


def render_dvc_yaml(doc: dict) -> str:
    """dvc.yaml text for `doc` (stages, plots)."""
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=100)
