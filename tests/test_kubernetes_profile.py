"""profiles/kubernetes, dry run only (no cluster here): with an S3 storage (moto) holding the
sources, every MNIST job carries its rule's memory and runtime, and a GPU only where the rule
runs a network."""
import subprocess
import sys

from e2e import ROOT, cli_env, sh
from test_dvc_remote import s3_server  # noqa: F401 (a fixture)
from test_slurm import GPU_RULES, declared_resources, parse_jobs


def test_kubernetes_profile_dry_run(s3_server):  # noqa: F811
    sources = subprocess.run(["git", "ls-files", "imgdag", "scripts"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    subprocess.run([sys.executable, "-c", "import boto3, sys; c = boto3.client('s3', "
                    "endpoint_url=sys.argv[1]); [c.upload_file(f, 'imgdag', 'run/' + f) "
                    "for f in sys.argv[2:]]", s3_server, *sources],
                   cwd=ROOT, check=True, env=cli_env())
    out = sh(["snakemake", "results/mnist_lenet5/metrics.json", "results/mnist_lenet5/predictions.csv",
              "-n", "--profile", "profiles/kubernetes", "--container-image", "imgdag:test",
              "--default-storage-provider", "s3", "--default-storage-prefix", "s3://imgdag/run",
              "--storage-s3-endpoint-url", s3_server], ROOT).stdout
    jobs = parse_jobs(out)
    declared = declared_resources()
    assert len(jobs) == 10
    for rule, resources in jobs:
        assert resources["mem_mb"] == declared[rule]["mem_mb"], rule
        assert (resources.get("gpu") == "1") == (rule in GPU_RULES), (rule, resources)
