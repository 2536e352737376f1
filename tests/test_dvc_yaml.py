"""dvc.yaml is generated from the Snakemake rules: it must be current, and say what DVC needs."""
import ast
import re
import shlex
from pathlib import Path

import yaml

from e2e import ROOT, sh
from imgdag import dvcgen
from imgdag.dvcgen import pipeline_from_snakemake, render_dvc_yaml


def test_committed_dvc_yaml_is_current():
    expected = render_dvc_yaml(pipeline_from_snakemake(ROOT))
    assert (ROOT / "dvc.yaml").read_text() == expected, \
        "dvc.yaml is stale: run `make dvc-yaml` and commit it"


def test_stages_cover_every_output_once_and_metrics_are_uncached():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    stages = pipeline["stages"]
    recipes = yaml.safe_load((ROOT / "params.yaml").read_text())["recipes"]
    # one stage per recipe, named after it, depending on every result file (plots and logs too:
    # Snakemake rebuilds a deleted one only when a target needs it)
    for recipe in recipes:
        deps = stages.pop(recipe)["deps"]
        assert f"results/{recipe}/metrics.json" in deps, recipe
        if recipe != "ilsvrc_alexnet_eval":  # the one recipe that trains nothing
            assert {f"results/{recipe}/{name}" for name in ("train_log.csv", "curves.png")} <= set(deps)
    outs = []
    for name, stage in stages.items():
        assert stage["cmd"].startswith("snakemake --cores all "), name
        assert "plots" not in stage, name  # drawn only as the top-level plots say
        for kind in ("outs", "metrics", "plots"):
            for item in stage.get(kind, []):
                path = item if isinstance(item, str) else next(iter(item))
                outs.append(path)
                # dvc repro leaves it in place; the stage's Snakemake replaces it once it accepts
                assert item[path]["persist"] is True, (name, path)
                if kind != "outs":
                    assert item[path]["cache"] is False, (name, path)
    assert len(outs) == len(set(outs))
    assert "results/mnist_lenet5/metrics.json" in outs
    train = stages["mnist_train"]
    # the weights depend on all three
    assert train["params"] == ["compute.cpu_isa", "compute.torch_threads", "recipes.mnist_lenet5.train"]
    # wall-clock files are job logs, versioned by neither git nor DVC (dvc.lock would change per run)
    assert not [path for path in outs if path.endswith(("train_times.csv", "latency.json"))]
    assert "scripts/train.py" in train["deps"] and "imgdag/engine.py" in train["deps"]
    # raw paths are params.yaml templates, so a new path needs no regeneration
    assert "${datasets.mnist.raw_dir}/train-images-idx3-ubyte.gz" in stages["mnist_pngs-train"]["deps"]
    # ... checked (key named) by the datasets_checked stage before DVC reads them
    assert "data/datasets.checked" in stages["mnist_pngs-train"]["deps"]
    assert stages["datasets_checked"]["params"] == ["datasets"]
    drawn = {path: opts for item in pipeline["plots"] for path, opts in item.items()}
    assert drawn["results/mnist_lenet5/classified.csv"]["template"] == "confusion"
    assert "seconds" not in drawn["results/mnist_lenet5/train_log.csv"]["y"]


def test_check_mode_fails_on_a_stale_file(tmp_path):
    from e2e import copy_repo

    ws = copy_repo(tmp_path)
    sh(["python", "scripts/write_dvc_yaml.py", "--check"], ws)
    (ws / "dvc.yaml").write_text((ws / "dvc.yaml").read_text().replace("mnist_train", "x"))
    done = sh(["python", "scripts/write_dvc_yaml.py", "--check"], ws, check=False)
    assert done.returncode == 1 and "stale" in done.stderr


def test_dvcgen_touches_only_public_snakemake_surfaces():
    """dvcgen reads the DAG through the documented `snakemake.api` and the JOB_INFO records whose
    fields snakemake-interface-logger-plugins documents (requirements.lock pins snakemake 9.27.1
    and that interface 2.1.0): no private attribute, no other Snakemake module."""
    tree = ast.parse(Path(dvcgen.__file__).read_text())
    private = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and node.attr.startswith("_") and not node.attr.startswith("__")]
    assert private == []
    named = [node.args[1].value for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", "") == "getattr" and isinstance(node.args[1], ast.Constant)]
    assert not [name for name in named if name.startswith("_")]
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {m for m in modules if m.startswith("snakemake")} == {
        "snakemake.api", "snakemake.settings.types",
        "snakemake_interface_logger_plugins.base", "snakemake_interface_logger_plugins.common",
        "snakemake_interface_logger_plugins.registry",
        "snakemake_interface_logger_plugins.settings"}


def test_every_params_key_a_rule_names_reaches_its_stages():
    """dvcgen takes a stage's params keys from its rule's `section()` params (the Snakefile's
    marks) and its command (a param that is a function of the wildcards): a key a rule reads only
    to rerun (imagenet8_train's data format) reaches the stage too, or DVC would not rerun it
    when the key changes."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    checked = 0
    for path in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule )", path.read_text()):
            rule = re.match(r"rule (\w+):", block)
            keys = set(re.findall(r'(?:section|cli_flags)\("([\w.]+)"\)', block))
            jobs = [stage for name, stage in stages.items()
                    if rule and (name == rule[1] or name.startswith(rule[1] + "-"))]
            for stage in jobs:  # a rule outside the demo's DAG has no stage
                assert keys <= set(stage.get("params", [])), (rule[1], keys)
                checked += bool(keys)
    assert checked >= 15  # the loop saw the rules


def test_commands_carry_no_data_in_comments_or_no_ops():
    """A rule's command is only its command: no shell comment and no `:` no-op that names a
    params key for dvc.yaml (the keys come from the rules' params)."""
    out = sh(["snakemake", "-n", "-p", "--forceall"], ROOT).stdout
    commands = [c for c in re.findall(r"\nShell command: (.*)", out) if c != "None"]  # `all`: None
    assert len(commands) > 30
    for command in commands:
        assert shlex.split(command, comments=True) == shlex.split(command), command
        assert not re.search(r"(^|[;&|(]\s*):\s", command), command


def test_the_in_process_dry_run_leaves_this_process_signal_handlers_as_they_were():
    """Snakemake's scheduler installs a SIGTERM handler that only sets a flag; left in place,
    pool workers forked later by this process ignore Pool.terminate() and the run hangs."""
    import signal

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    pipeline_from_snakemake(ROOT)
    assert {sig: signal.getsignal(sig) for sig in before} == before
