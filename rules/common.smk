"""Helpers for all rule files (the Python to run, params sections, code inputs, DVC marks)."""
import json
import os
import sys

sys.path.insert(0, workflow.basedir)
from imgdag.codedeps import code_files  # noqa: E402

# jobs run `python`: the interpreter running Snakemake (the project's venv) comes first on PATH
shell.prefix(f'export PATH="{os.path.dirname(sys.executable)}:$PATH"; ')
# the `gpu` resource of rules that run a network (training, evaluation, prediction, features)
GPUS_PER_JOB = config["compute"]["gpus_per_job"]
DVC_METRICS = set()  # paths; read by scripts/write_dvc_yaml.py
DVC_PLOTS = {}  # path -> {x, y}


class ParamSection(str):
    """A params.yaml section as JSON text (what a script's --params takes), keeping its key."""

    key = ""


def section(key):
    """The params.yaml section at dotted `key` (a number picks a list item, as in DVC), for a
    rule's params (Snakemake reruns the rule when it changes; dvc.yaml lists the key)."""
    value = config
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    text = ParamSection(json.dumps(value, sort_keys=True))
    text.key = key
    return text


def code(script):
    """Input files: the script and every imgdag module it imports."""
    return code_files(script)


def metrics(path):
    """Mark an output as a DVC metrics file (not cached, kept in git)."""
    DVC_METRICS.add(path)
    return path


def plot(path, x, y):
    """Mark an output CSV as a DVC plot of columns y against x (not cached)."""
    DVC_PLOTS[path] = {"x": x, "y": y}
    return path


def cli_flags(key):
    """The params.yaml section at `key` as script flags: {pass_through: true, resize: 0}
    -> '--pass-through --resize 0' (false booleans are left out)."""
    flags = []
    for name, value in json.loads(section(key)).items():
        flag = f"--{name.replace('_', '-')}"
        if value is True:
            flags.append(flag)
        elif value is not False:
            flags += [flag, str(value)]
    return " ".join(flags)
