"""A job whose script fails fails in Snakemake and in DVC, with the script's own error shown.

The rules that pipe a script into `tee` are found in rules/*.smk, so a new one is covered.
Each runs on placeholder inputs (empty files): its script stops with its one-line error naming
the file, and the Snakemake job must fail with that line in its output, not "completed
successfully" (`tee`'s exit status) with the outputs missing.
"""
import re

import pytest
import yaml

from e2e import ROOT, copy_repo, sh

RULE = re.compile(r"^rule (\w+):", re.M)
TEMPLATE = re.compile(r"\$\{([\w.]+)\}")


def lookup(params: dict, key: str):
    for part in key.split("."):
        params = params[part]
    return params


def tee_rules() -> list[str]:
    """Names of the rules whose shell command pipes into tee."""
    found = []
    for path in sorted((ROOT / "rules").glob("*.smk")):
        text = path.read_text()
        starts = [(m.start(), m.group(1)) for m in RULE.finditer(text)] + [(len(text), "")]
        found += [name for (start, name), (end, _) in zip(starts, starts[1:])
                  if "| tee" in text[start:end]]
    return found


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("failing") / "repo")


def placeholder_inputs(ws, stage: dict) -> list[str]:
    """Create each missing dep of a dvc.yaml stage as an empty file; the stage's outputs."""
    params = yaml.safe_load((ws / "params.yaml").read_text())
    for dep in stage["deps"]:
        path = ws / TEMPLATE.sub(lambda m: str(lookup(params, m.group(1))), dep)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    return [next(iter(o)) if isinstance(o, dict) else o
            for kind in ("outs", "metrics") for o in stage.get(kind, [])]


def test_the_tee_rules_are_found():
    assert {"mnist_train", "dog_head"} <= set(tee_rules())


@pytest.mark.parametrize("rule", tee_rules())
def test_a_failing_script_piped_into_tee_fails_its_snakemake_job(ws, rule):
    stages = yaml.safe_load((ws / "dvc.yaml").read_text())["stages"]
    outputs = placeholder_inputs(ws, stages[rule])
    done = sh(["snakemake", "--cores", "2", *outputs, "--allowed-rules", rule], ws, check=False)
    text = done.stdout + done.stderr
    assert done.returncode != 0, text[-3000:]
    assert f"Error in rule {rule}" in text and "completed successfully" not in text, text[-3000:]
    assert f"Logfile logs/{rule}.log" in text, text[-3000:]
    # the script's own one-line error, through tee, not a traceback
    assert re.search(r"^error: \S+: ", done.stdout + done.stderr, re.M), text[-3000:]
    assert "Traceback" not in text, text[-3000:]


def test_a_failing_script_fails_dvc_repro(ws):
    stages = yaml.safe_load((ws / "dvc.yaml").read_text())["stages"]
    placeholder_inputs(ws, stages["mnist_train"])
    done = sh(["dvc", "repro", "--single-item", "mnist_train"], ws, check=False)
    text = done.stdout + done.stderr
    assert done.returncode != 0, text[-3000:]
    assert "Error in rule mnist_train" in text and "completed successfully" not in text, text[-3000:]
