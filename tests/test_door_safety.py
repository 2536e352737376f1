"""Neither door deletes a result before the run is accepted: a bad params key or value (augment
crops larger than the images), a raw path that does not exist, or a folder another run is busy in fails `dvc repro` / `dvc exp run` before any output
is removed, with a message naming the key (or the lock). A raw path that does not exist is an error
naming its key even when the outputs it fed exist; imagenet-8's class count is checked against a
raw tar before any job.

The tests share one workspace: the mnist_lenet5 recipe (one epoch) made by Snakemake and recorded
in DVC.
"""
import subprocess
import tarfile
import time

import pytest
import yaml

from e2e import cli_env, clone_workspace, copy_repo, sh

OUT = "results/mnist_lenet5"
KEPT = [f"{OUT}/model.pt", f"{OUT}/train_log.csv", f"{OUT}/curves.png", "data/mnist/test.lst",
        "data/mnist/images/test"]
pytestmark = pytest.mark.slow


def edit_params(ws, change):
    params = yaml.safe_load((ws / "params.yaml").read_text())
    change(params)
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def misspelt_key(params):
    train = params["recipes"]["mnist_lenet5"]["train"]
    train["epoch"] = train.pop("epochs")


def missing_raw_dir(params):
    params["datasets"]["mnist"]["raw_dir"] = "nowhere/mnist"


MISSPELT = "recipes.mnist_lenet5.train: unknown key 'epoch' (did you mean 'epochs'?)"
MISSING = "datasets.mnist.raw_dir: nowhere/mnist does not exist"


@pytest.fixture(scope="module")
def ws(mnist_done, tmp_path_factory):
    """The session's finished MNIST run (one epoch), recorded in dvc.lock and committed."""
    ws = clone_workspace(mnist_done, tmp_path_factory.mktemp("door_safety") / "repo")
    sh(["python", "scripts/sync_doors.py", "record", "mnist_lenet5"], ws)
    sh(["git", "add", "-A"], ws)
    sh(["git", "commit", "-qm", "one epoch, recorded"], ws)
    return ws


@pytest.fixture
def kept(ws):
    """The results' bytes before the test; after it, params.yaml and dvc.lock as committed."""
    before = {name: read(ws / name) for name in KEPT}
    yield before
    sh(["git", "checkout", "params.yaml", "dvc.lock"], ws)


def read(path):
    """A file's bytes, or a folder's {name: bytes}."""
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir()}
    return path.read_bytes()


def assert_kept(ws, before):
    for name, data in before.items():
        assert (ws / name).exists(), f"{name} was deleted"
        assert read(ws / name) == data, f"{name} was rewritten"


@pytest.mark.parametrize("change, message", [(misspelt_key, MISSPELT), (missing_raw_dir, MISSING)],
                         ids=["misspelt key", "missing raw path"])
def test_dvc_repro_refuses_before_deleting(ws, kept, change, message):
    edit_params(ws, change)
    done = sh(["dvc", "repro", "mnist_lenet5"], ws, check=False)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr, done.stdout + done.stderr
    assert_kept(ws, kept)


@pytest.mark.parametrize("setting, message",
                         [("+recipes.mnist_lenet5.train.epoch=2", "unknown key 'epoch'"),
                          ("datasets.mnist.raw_dir=nowhere/mnist", MISSING),
                          ("recipes.mnist_lenet5.train.augment.crop_max=40",
                           "recipes.mnist_lenet5.train.augment.crop_max: 40, more than the side of MNIST digits")],
                         ids=["misspelt key", "missing raw path", "crops larger than the digits"])
def test_dvc_exp_run_refuses_before_deleting(ws, kept, setting, message):
    done = sh(["dvc", "exp", "run", "mnist_lenet5", "-S", setting], ws, check=False)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr, done.stdout + done.stderr
    assert_kept(ws, kept)


def test_missing_raw_path_is_an_error_when_outputs_exist(ws, kept):
    assert (ws / f"{OUT}/metrics.json").exists()
    edit_params(ws, missing_raw_dir)
    done = sh(["snakemake", "-n", "mnist_lenet5"], ws, check=False)
    assert done.returncode == 1
    assert MISSING in done.stdout + done.stderr, done.stdout + done.stderr


def test_demo_raw_paths_are_no_error_before_the_demo_ran(tmp_path):
    fresh = copy_repo(tmp_path)
    done = sh(["snakemake", "-n", "mnist_lenet5"], fresh)
    assert "demo_mnist" in done.stdout


def test_imagenet8_class_count_is_checked_against_a_raw_tar(ws, kept, tmp_path):
    with tarfile.open(tmp_path / "imagenet-3.tar", "w") as tar:
        for wnid in ("n01440764", "n01443537", "n01484850"):
            (tmp_path / f"{wnid}.JPEG").write_bytes(b"not read")
            tar.add(tmp_path / f"{wnid}.JPEG", f"imagenet-3/train/{wnid}/{wnid}_1.JPEG")
    edit_params(ws, lambda p: p["datasets"]["imagenet8"].update(raw=str(tmp_path / "imagenet-3.tar")))
    done = sh(["snakemake", "-n", "mnist_lenet5"], ws, check=False)
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "recipes.imagenet8_alexnet.train.num_classes: 8, expected 3" in out, out


def test_dvc_refuses_a_folder_snakemake_is_busy_in(ws, kept, tmp_path):
    log = open(tmp_path / "first.log", "w")
    # the first run rereads model.pt (predict, evaluate); DVC would delete it, then meet the lock
    first = subprocess.Popen(["snakemake", "--cores", "1", "--forcerun", "mnist_predict",
                              "mnist_evaluate", "--", "mnist_lenet5"],
                             cwd=ws, env=cli_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not any((ws / ".snakemake/locks").glob("*")) and first.poll() is None:
            assert time.monotonic() < deadline, "snakemake took no lock"
            time.sleep(0.2)
        second = sh(["dvc", "repro", "--force", "--single-item", "mnist_train"], ws, check=False)
        first_rc = first.wait(timeout=600)
    finally:
        first.kill()
        log.close()
    assert first_rc == 0, (tmp_path / "first.log").read_text()
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stdout + second.stderr, second.stderr
    assert_kept(ws, kept)
