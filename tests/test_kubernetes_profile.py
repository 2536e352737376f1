"""profiles/kubernetes, dry run only (no cluster here): the documented command
(docs/scaling-out.md), on an empty moto S3 storage, plans every recipe; each job carries its
rule's memory and runtime, a GPU only where the rule runs a network, and its command names files
only through the storage's local copies."""
import re
import shlex

from e2e import ROOT, sh
from test_dvc_remote import s3_server  # noqa: F401 (a fixture)
from test_slurm import GPU_RULES, declared_resources, parse_jobs

STORAGE_COPY = ".snakemake/storage/s3/imgdag/run/"


def documented_command() -> list[str]:
    """The documented Kubernetes command (the `snakemake --profile profiles/kubernetes` lines of
    docs/scaling-out.md's bash block), with its bucket and image filled in."""
    text = (ROOT / "docs" / "scaling-out.md").read_text().replace("\\\n", " ")
    line, = re.findall(r"^snakemake --profile profiles/kubernetes .*$", text, re.M)
    return shlex.split(line.replace("s3://BUCKET/imgdag", "s3://imgdag/run").replace("IMAGE", "imgdag:test"))


def test_documented_command_dry_run(s3_server):  # noqa: F811
    out = sh([*documented_command(), "-n", "--storage-s3-endpoint-url", s3_server], ROOT).stdout
    jobs = [(rule, resources) for rule, resources in parse_jobs(out) if rule != "all"]
    # the code files the rules list reach the storage by local copy jobs (rules/storage.smk)
    copies = [resources for rule, resources in jobs if rule == "code_to_storage"]
    assert len(copies) > 50 and all(r["mem_mb"] == "100" and "gpu" not in r for r in copies)
    declared = declared_resources()
    steps = [(rule, resources) for rule, resources in jobs if rule != "code_to_storage"]
    # every rule of every recipe (the default target), but the Caffe weight conversion and the
    # state of a raw folder (not in the default DAG: the demo's raws are archives)
    assert {rule for rule, _ in steps} == set(declared) - {"ilsvrc_alexnet_caffe_weights", "raw_state"}
    for rule, resources in steps:
        assert resources["mem_mb"] == declared[rule]["mem_mb"], rule
        assert resources["runtime"] == declared[rule]["runtime"], rule
        assert (resources.get("gpu") == "1") == (rule in GPU_RULES), (rule, resources)
    commands = [c for c in re.findall(r"\nShell command: (.*)", out) if c != "None"]  # `all`: None
    assert len(commands) == len(jobs)
    for command in commands:
        words = shlex.split(command)
        # a path written into the rule by hand would be one of these, outside the storage
        assert not [w for w in words if re.match(r"(data|results|logs)/", w)], command
        assert any(w.startswith(STORAGE_COPY) for w in words), command
