"""A DVC remote shares data and models: `make remote URL=...`, `dvc push`, then a fresh clone's
`dvc pull` restores them and neither door has anything to do. Tried on a folder remote (the whole
MNIST recipe, then both doors' check) and on an S3 server (moto) started here (one folder output
and the model: the whole recipe, about 4,150 objects, took 73 s through moto; what a clone does
with pulled files does not depend on the remote).
"""
import os
import socket
import subprocess
import sys
import time

import pytest

from e2e import BIN, clone_workspace, cli_env, sh

pytestmark = pytest.mark.slow
TARGETS = ["results/mnist_lenet5/metrics.json", "results/mnist_lenet5/predictions.csv"]
STAGES = ["mnist_evaluate", "mnist_predict"]
# what the clone must get back: data (caches, RecordIO), the model, the predictions
RESTORED = ["data/mnist/train.rec", "data/mnist/cache/train.images.npy",
            "data/mnist/images/test", "results/mnist_lenet5/model.pt",
            "results/mnist_lenet5/predictions.csv"]


@pytest.fixture(scope="module")
def origin(mnist_done, tmp_path_factory):
    """A copy of the session's finished MNIST run (one epoch), recorded in dvc.lock."""
    ws = clone_workspace(mnist_done, tmp_path_factory.mktemp("origin") / "repo")
    sh(["dvc", "commit", "--force", "--with-deps", *STAGES], ws)
    return ws


def round_trip(origin, url, clone, targets, *endpoint):
    """Set the remote with the documented command, push `targets` (dvc push's arguments), clone,
    pull them; return the clone."""
    sh(["make", "remote", f"URL={url}", *endpoint], origin)
    sh(["git", "add", "-A"], origin)
    sh(["git", "commit", "-qm", f"remote {url}"], origin)
    sh(["dvc", "push", *targets], origin)
    sh(["git", "clone", "-q", str(origin), str(clone)], clone.parent)
    assert not (clone / "results/mnist_lenet5/model.pt").exists()
    sh(["dvc", "pull", *targets], clone)
    assert (clone / "results/mnist_lenet5/model.pt").read_bytes() == \
        (origin / "results/mnist_lenet5/model.pt").read_bytes()
    return clone


def assert_nothing_to_do(clone):
    """DVC sees the pulled files as recorded; then, with their modification times put in DAG
    order (a fresh clone has no Snakemake metadata, and pulled inputs can be newer than the
    outputs made from them), Snakemake has nothing to do either."""
    status = sh(["dvc", "status", *STAGES, "--with-deps"], clone).stdout
    assert "up to date" in status, status
    sh(["snakemake", "--touch", "--cores", "1", *TARGETS], clone)
    dry = sh(["snakemake", "-n", *TARGETS], clone)
    assert "Nothing to be done" in dry.stdout, dry.stdout[-3000:]
    assert "up to date" in sh(["dvc", "status", *STAGES, "--with-deps"], clone).stdout


def test_folder_remote_round_trip(origin, tmp_path):
    clone = round_trip(origin, tmp_path / "store", tmp_path / "clone", ["--with-deps", *STAGES])
    assert any((tmp_path / "store").rglob("*"))
    for name in RESTORED:
        assert (clone / name).exists(), name
    assert_nothing_to_do(clone)


def tree_bytes(folder):
    """{path under folder: bytes} of every file in it."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server():
    """moto's S3 server on 127.0.0.1 with a bucket `imgdag`; yields its endpoint URL."""
    server = BIN / "moto_server"
    if not server.exists():
        pytest.skip("moto is not installed (make cluster-env)")
    port = free_port()
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(keys)  # sh() passes them to dvc
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run([sys.executable, "-c", "import boto3,sys; boto3.client('s3', "
                        "endpoint_url=sys.argv[1]).create_bucket(Bucket='imgdag')", endpoint],
                       check=True, env=cli_env())
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for key in keys:
            del os.environ[key]


def test_s3_remote_round_trip(origin, s3_server, tmp_path):
    folder = "data/mnist/images/test"
    clone = round_trip(origin, "s3://imgdag/cache", tmp_path / "clone",
                       [folder, "results/mnist_lenet5/model.pt"], f"ENDPOINT={s3_server}")
    pulled, pushed = tree_bytes(clone / folder), tree_bytes(origin / folder)
    assert pulled == pushed and len(pulled) > 100
    listed = subprocess.run([sys.executable, "-c", "import boto3,sys; print(boto3.client('s3', "
                             "endpoint_url=sys.argv[1]).list_objects_v2(Bucket='imgdag')"
                             "['KeyCount'])", s3_server],
                            check=True, env=cli_env(), capture_output=True, text=True).stdout
    assert int(listed) > len(pushed)  # the objects are on the server (a folder's listing too)
    cloud = sh(["dvc", "status", "--cloud", folder, "results/mnist_lenet5/model.pt"], clone).stdout
    assert "in sync" in cloud, cloud
