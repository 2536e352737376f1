"""dvc.yaml generated from the Snakemake DAG: one DVC stage per Snakemake job.

Snakemake is the one source of truth. Each stage's deps are the job's inputs (data and the
code files the rule lists), its params are the params.yaml sections the rule's `section()`
params name (whether its command uses them or not), its outs are the job's outputs (metrics and plots marked in the rules are
`cache: false`), and its cmd asks Snakemake to force exactly that job. The cmd ends with a
hash of the job's command, so DVC reruns a stage when its rule's command changes, as
Snakemake does.

Nothing is deleted before Snakemake has accepted the run: every out is `persist: true`, so
`dvc repro` leaves the old outputs in place, and the stage's Snakemake removes them only once
it has validated the config, built the DAG (inputs present) and taken its lock (a busy folder
refuses). Forcing only the stage's own job (`--force`, not `--forceall`) never rebuilds
upstream work. DVC keeps no run-cache entry for a stage with persisted outs: returning to
earlier params reruns the stage. A stage that reads raw data also depends on the
`datasets_checked` marker (stable content), so DVC runs the Snakefile's raw-path check, which
names the params.yaml key, before it looks at a raw file that is not there.

Raw dataset paths are written as DVC templates (`${datasets.mnist.raw_dir}/...`), so a new
path in params.yaml reaches `dvc repro` without regenerating this file; so are they in the
command hash of a stage that reads a raw folder in place, whose state file (rules/raw_state.smk)
stands for the folder in its deps. They appear only in deps, never in a cmd: a stage's cmd
names its (shell-quoted) outputs, and Snakemake quotes every path and value it puts into a
job's shell command (`:q` in the rules). Each recipe gets a stage of its own name whose deps
are the recipe's final outputs (the recipe's Snakemake target rule): `dvc repro mnist_lenet5`
and `dvc exp run mnist_lenet5` touch that recipe only.

Only Snakemake's public surfaces are used (pinned in requirements.lock, snakemake 9.x;
tests/test_dvc_yaml.py checks that no private attribute is touched):
- the documented API `snakemake.api` (SnakemakeApi -> workflow() -> dag() ->
  execute_workflow(executor="dryrun")) runs a forced dry run of the whole DAG;
- each job is read from the `LogEvent.JOB_INFO` records of that dry run, whose fields
  (rule_name, wildcards, input, output, shellcmd) snakemake-interface-logger-plugins
  documents; a logger plugin (`JobCollector`, registered through that interface's public
  registry) keeps them, and `SnakemakeApi.get_log_handlers()` hands it back.
What Snakemake has no public word for is ours: with IMGDAG_DVC_DESCRIBE set, the rules'
`section()` params render as `@params:KEY@` (so a job's command, and its hash, name the
params.yaml keys it reads, whatever their values) and the Snakefile writes its DVC marks
(metrics, plots, each rule's `section()` params keys, recipe targets, datasets) to the file that
variable names (rules/common.smk). A stage's params keys are its rule's, plus those its
command names (a param that is a function of the job's wildcards, as dog_features' backbone).
"""
import hashlib
import json
import os
import re
import shlex
import signal
import tempfile
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.registry import LoggerPluginRegistry
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

HEADER = ("# Generated from the Snakemake rules by scripts/write_dvc_yaml.py; do not edit.\n"
          "# `make dvc-yaml` rewrites it; tests/test_dvc_yaml.py fails when it is stale.\n")
DESCRIBE_ENV = "IMGDAG_DVC_DESCRIBE"
PARAM = re.compile(r"@params:([A-Za-z0-9_.]+)@")
PLUGIN = "imgdag-jobs"
JOB_FIELDS = ("rule_name", "wildcards", "input", "output", "shellcmd")


@dataclass
class JobCollectorSettings(LogHandlerSettingsBase):
    """No settings: the collector only keeps records."""


class JobCollector(LogHandlerBase):
    """A Snakemake logger plugin that keeps each job's documented JOB_INFO fields."""

    writes_to_stream = True  # replaces Snakemake's terminal output (the dry run stays quiet)
    writes_to_file = False
    has_filter = True
    has_formatter = True
    needs_rulegraph = False

    def __post_init__(self) -> None:
        self.jobs = []

    def emit(self, record) -> None:
        if getattr(record, "event", None) == LogEvent.JOB_INFO:
            self.jobs.append({key: getattr(record, key, None) for key in JOB_FIELDS})


def _register_plugin() -> None:
    """Make `JobCollector` the logger plugin PLUGIN (a plugin is a module with LogHandler and
    LogHandlerSettings; registering twice does nothing)."""
    module = types.ModuleType("snakemake_logger_plugin_imgdag_jobs")
    module.LogHandler, module.LogHandlerSettings = JobCollector, JobCollectorSettings
    LoggerPluginRegistry().register_plugin(module.__name__, module)


@contextmanager
def _signal_handlers_kept():
    """Put back this process's SIGTERM and SIGINT handlers on leaving: Snakemake's scheduler
    installs a SIGTERM handler that only sets a flag, and processes forked later (pool
    workers) would inherit it and ignore SIGTERM."""
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)


@contextmanager
def _env(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def _snakemake_jobs(root: Path, targets):
    """The jobs of a forced dry run of `targets` (JOB_INFO fields, sorted by stage name) and
    the Snakefile's DVC marks. The demo rules are targets too, so dvc.yaml keeps their
    stages whatever the raw paths."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (DAGSettings, ExecutionSettings, OutputSettings,
                                          ResourceSettings)

    _register_plugin()
    with (tempfile.TemporaryDirectory() as tmp, _env(DESCRIBE_ENV, f"{tmp}/marks.json"),
          _signal_handlers_kept()):
        settings = OutputSettings(dryrun=True, printshellcmds=True,
                                  log_handler_settings={PLUGIN: JobCollectorSettings()})
        with SnakemakeApi(settings) as api:
            # one core: `{threads}` in the commands does not depend on the machine
            workflow = api.workflow(resource_settings=ResourceSettings(cores=1),
                                    snakefile=root / "Snakefile", workdir=root)
            # no lock and incomplete files ignored: it may run beside a real run
            workflow.dag(DAGSettings(targets=set(targets), forceall=True)).execute_workflow(
                executor="dryrun",
                execution_settings=ExecutionSettings(lock=False, ignore_incomplete=True))
            collector, = [h for h in api.get_log_handlers() if isinstance(h, JobCollector)]
        marks = json.loads(Path(f"{tmp}/marks.json").read_text())
    missing = sorted({key for job in collector.jobs for key in JOB_FIELDS if job[key] is None
                      and (key != "shellcmd" or job["output"])})  # target rules have no shell
    if not collector.jobs or missing:
        raise RuntimeError(f"Snakemake's dry run reported {len(collector.jobs)} jobs"
                           f"{', some without ' + ', '.join(missing) if missing else ''} (dvc.yaml"
                           " needs the JOB_INFO fields of snakemake-interface-logger-plugins and"
                           " rules with outputs that run a shell command)")
    # by name, not by DAG level: a raw path that skips the demo moves jobs between levels
    return sorted(collector.jobs, key=_stage_name), marks


def _stage_name(job) -> str:
    return "-".join([job["rule_name"], *map(str, job["wildcards"].values())])


def pipeline_from_snakemake(root=".", targets=("all", "demo")) -> dict:
    """dvc.yaml's content (stages, plots) for the Snakemake DAG of `targets`."""
    jobs, marks = _snakemake_jobs(Path(root).resolve(), targets)
    metrics, plots = set(marks["metrics"]), marks["plots"]
    templates = _dataset_templates(marks["datasets"])
    stages = {}
    for job in jobs:
        outputs = job["output"]
        if not outputs:  # target rules such as `all`
            continue
        deps = sorted({_templated(f, templates) for f in job["input"]})
        command = job["shellcmd"]
        keys = sorted(set(PARAM.findall(command)).union(marks["params"][job["rule_name"]]))
        # reads raw data (a raw folder's state file stands for it): its paths are templates
        reads_raw = any(dep.startswith("${") or dep in marks["raw_states"] for dep in deps)
        if reads_raw:
            command = _templated_command(command, templates)
        shell_hash = hashlib.sha256(command.encode()).hexdigest()[:12]
        stage = {"cmd": f"snakemake --cores all --force {shlex.join(outputs)}  # rule "
                        f"{job['rule_name']} shell {shell_hash}"}
        if reads_raw:
            deps.append(marks["datasets_checked"])
        if deps:
            stage["deps"] = deps
        if keys:
            stage["params"] = keys
        # plot data are plain outs kept in git: drawn only as the top-level plots say (a
        # stage-level plot would also draw every other column, such as seconds, against step)
        outs = [{f: {"persist": True, **({"cache": False} if f in plots else {})}}
                for f in outputs if f not in metrics]
        if outs:
            stage["outs"] = outs
        marked = [{f: {"cache": False, "persist": True}} for f in outputs if f in metrics]
        if marked:
            stage["metrics"] = marked
        stages[_stage_name(job)] = stage
    for recipe, files in marks["recipes"].items():
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


def _templated_command(command: str, templates) -> str:
    """`command` with each raw dataset path, bare or inside a shell-quoted word (rules quote
    with `:q`, i.e. shlex.quote), replaced by its template: the command's hash is the same
    whatever the raw paths."""
    for value, template in templates:
        quoted = re.escape("'" + value.replace("'", "'\"'\"'")) + r"([^']*)'"
        command = re.sub(quoted, lambda m: template + m.group(1), command)
        command = command.replace(value, template)
    return command


def render_dvc_yaml(pipeline: dict) -> str:
    """dvc.yaml text for the stages and plots of `pipeline`."""
    return HEADER + yaml.safe_dump(pipeline, sort_keys=False, width=100)
