"""dvc.yaml generated from the Snakemake DAG: one DVC stage per Snakemake job.

Snakemake is the one source of truth. Each stage's deps are the job's inputs (data and the
code files the rule lists), its params are the params.yaml sections the rule's `section()`
params name, its outs are the job's outputs (metrics and plots marked in the rules are
`cache: false`), and its cmd asks Snakemake for exactly those outputs. The cmd ends with a
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


def stages_from_snakemake(root=".", targets=("all",)) -> dict:
    """The `stages` mapping of dvc.yaml for the Snakemake DAG of `targets`."""
    jobs, names = _snakemake_jobs(Path(root).resolve(), targets)
    metrics, plots = names["DVC_METRICS"], names["DVC_PLOTS"]
    stages = {}
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
        keys = sorted(v.key for v in job.rule.params if getattr(v, "key", ""))  # job.params are plain str
        if keys:
            stage["params"] = keys
        outs = [f for f in outputs if f not in metrics and f not in plots]
        if outs:
            stage["outs"] = outs
        for kind, marks in (("metrics", metrics), ("plots", plots)):
            marked = [{f: dict(marks[f])} for f in outputs if f in marks]
            if marked:
                stage[kind] = marked
        stages[_stage_name(job)] = stage
    return stages


def render_dvc_yaml(stages: dict) -> str:
    """dvc.yaml text for `stages`."""
    return HEADER + yaml.safe_dump({"stages": stages}, sort_keys=False, width=100)
