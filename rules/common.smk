"""Helpers for all rule files (the Python to run, params sections, code inputs, DVC marks)."""
import functools
import json
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)
from imgdag.arraycache import cache_stem  # noqa: E402
from imgdag.codedeps import code_files, model_code_files  # noqa: E402
from imgdag.cli import SUBSET_ENV  # noqa: E402
from imgdag.layouts.tree import folder_state  # noqa: E402

# Every job runs under bash's strict mode (shell.prefix replaces Snakemake's own
# `set -euo pipefail`): a script that fails fails its job, also when piped into `tee`. Jobs run
# `python`: the interpreter running Snakemake (the project's venv) comes first on PATH. A smoke
# run (the Snakefile's SUBSET) tells the layout readers its images per class; a full run makes
# sure they do not hear of one.
shell.prefix(f'set -euo pipefail; export PATH={shlex.quote(os.path.dirname(sys.executable))}:"$PATH"; '
             + (f"export {SUBSET_ENV}={SUBSET}; " if SUBSET else f"unset {SUBSET_ENV}; "))
# the `gpu` resource of rules that run a network (training, evaluation, prediction, features)
GPUS_PER_JOB = config["compute"]["gpus_per_job"]
DISTRIBUTED = config["compute"]["distributed"]
TRAIN_PROCESSES = DISTRIBUTED["nnodes"] * DISTRIBUTED["nproc_per_node"]
# torch's CPU threads in training: a fixed count (the weights depend on it) or "auto"
TORCH_THREADS = config["compute"]["torch_threads"]


def cache_train_threads(auto=4):
    """The threads of a training job without loader workers (array caches): the fixed torch
    thread count, or `auto` (Snakemake lowers it to --cores when smaller)."""
    return auto if TORCH_THREADS == "auto" else TORCH_THREADS


def train_launcher():
    """What runs scripts/train.py in a DDP-capable training rule: `python` for one process,
    torchrun for compute.distributed's nnodes x nproc_per_node (c10d rendezvous; across nodes,
    one torchrun per node of the SLURM allocation through srun, rendezvous on its first node)."""
    nnodes, nproc = DISTRIBUTED["nnodes"], DISTRIBUTED["nproc_per_node"]
    if nnodes * nproc == 1:
        return "python"
    if nnodes == 1:
        return f"torchrun --standalone --nnodes 1 --nproc-per-node {nproc}"
    first_node = ('$(scontrol show hostnames "$(squeue -h -j $SLURM_JOB_ID -o %N)"'
                  " | head -n 1)")
    return (f"srun --overlap --nodes {nnodes} --ntasks-per-node 1 torchrun --nnodes {nnodes}"
            f" --nproc-per-node {nproc} --rdzv-backend c10d --rdzv-id $SLURM_JOB_ID"
            f" --rdzv-endpoint {first_node}:29500")


DVC_METRICS = set()  # paths; read by scripts/write_dvc_yaml.py
DVC_PLOTS = {}  # path -> {x, y}
# set by scripts/write_dvc_yaml.py for its dry run (imgdag/dvcgen.py): params render as
# `@params:KEY@` (no braces: Snakemake reads those as wildcards), and the Snakefile writes the
# DVC marks to the file it names
DVC_DESCRIBE = os.environ.get("IMGDAG_DVC_DESCRIBE")


class ParamSection(str):
    """A params.yaml section as a script's argument, keeping its key: JSON text (what --params
    takes), or a plain string value as itself (a rule's `:q` quotes it for the shell)."""

    key = ""


def section(key):
    """The params.yaml section at dotted `key` (a number picks a list item, as in DVC), for a
    rule's params (Snakemake reruns the rule when it changes; dvc.yaml lists the key)."""
    value = config
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    if DVC_DESCRIBE:
        text = ParamSection(f"@params:{key}@")
    else:
        text = ParamSection(value if isinstance(value, str) else json.dumps(value, sort_keys=True))
    text.key = key
    return text


def code(script, *modules, models=()):
    """Input files: the script and every imgdag module it imports, plus `modules` (files of
    modules the script imports by name at run time) and the modules that build `models`
    (registered model names: imgdag/model_registry.py), and what they import. Under a default
    storage provider they are storage objects that rule code_to_storage fills (rules/storage.smk)."""
    files = set().union(*(code_files(path) for path in (script, *modules)))
    return sorted(files.union(*(model_code_files(name) for name in models)))


def images_folder(raw, extract_rule):
    """The folder of images a job reads, as a param: the raw path when it is a folder (read in
    place), else the folder that the extraction rule `extract_rule` fills from the archive
    (looked up when a job is made: the rule may come later in the file)."""
    if os.path.isdir(raw):
        return raw
    return lambda wildcards: getattr(rules, extract_rule).output.images


RAW_FOLDERS = {}  # dataset: its raw folder, read in place (raw_images_input); rules/raw_state.smk
cached_folder_state = functools.cache(folder_state)  # a raw folder is walked once per Snakemake process


def raw_state_file(dataset):
    """The state file of `dataset`'s raw folder (rules/raw_state.smk writes it)."""
    return f"data/raw_state/{dataset}.txt"


def raw_images_input(dataset, raw, archive_input):
    """The input that stands for the images of the raw path `raw` of `dataset` in the jobs that
    read them. A folder, read in place, is stood for by its state file (raw_state_file), which
    rules/raw_state.smk rewrites when an image inside changes; so Snakemake and DVC walk the
    folder once per run, not once per job, and rerun exactly the jobs that read it. For an
    archive, `archive_input` (the archive, or its extraction's listing)."""
    if not os.path.isdir(raw):
        return archive_input
    RAW_FOLDERS[dataset] = raw
    return raw_state_file(dataset)


def recipe_model(recipe):
    """The registered model name a recipe trains (its train.model)."""
    return config["recipes"][recipe]["train"]["model"]


def metrics(path):
    """Mark an output as a DVC metrics file (not cached, kept in git)."""
    DVC_METRICS.add(path)
    return path


def plot(path, x, y, template="linear"):
    """Mark an output CSV as a DVC plot of columns y against x (not cached), drawn with a DVC
    plot template (linear, confusion, ...)."""
    DVC_PLOTS[path] = {"x": x, "y": y, "template": template}
    return path


def cli_flags(key):
    """The params.yaml section at `key` as script flags, each value shell-quoted:
    {pass_through: true, resize: 0} -> '--pass-through --resize 0' (false booleans are left out)."""
    if DVC_DESCRIBE:
        return section(key)
    flags = []
    for name, value in json.loads(section(key)).items():
        flag = f"--{name.replace('_', '-')}"
        if value is True:
            flags.append(flag)
        elif value is not False:
            flags += [flag, shlex.quote(str(value))]
    return " ".join(flags)


def not_a_target(name, recipes):
    """Stop with an error listing the recipe targets (the input of the Snakefile's catch-all
    unknown_target, for a bare word nothing makes), where Snakemake would only say it has no
    producer for `name`."""
    raise WorkflowError(f"{name!r} is neither a rule nor a file a rule makes; the recipes are "
                        + ", ".join(recipes) + " (every recipe: `all`; the demo data: `demo`)")
