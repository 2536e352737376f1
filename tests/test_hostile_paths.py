"""Raw paths that are shell syntax (a space, quotes, `$(...)`, backticks, `;`) reach the
scripts as plain paths through both doors, `snakemake` and `dvc repro` of the generated
dvc.yaml: the outputs are right and nothing in the names runs.

Two real conversion stages in a copy of the repository: MNIST idx -> PNG files + .lst from a
raw folder with such a name, and the imagenet-8 extraction from a tar with such a name.
"""
import gzip
import tarfile

import pytest
import yaml

from e2e import copy_repo, sh

pytestmark = pytest.mark.slow

MARKERS = [f"PWNED{i}" for i in range(1, 7)]
# balanced quotes: unquoted, each name is three commands a shell runs
MNIST_DIR = "raw/m $(touch PWNED1) `touch PWNED2`; touch PWNED3; 'q' \"q\""
IMAGENET8_TAR = "raw/i $(touch PWNED4) `touch PWNED5`; touch PWNED6; 'q' \"q\".tar"
TARGETS = ["data/mnist/images/test", "data/mnist/test.lst",
           "data/imagenet8/images", "data/imagenet8/sha256sums.txt"]


def outputs(ws) -> dict:
    return {name: (ws / name).read_text() for name in ("data/mnist/test.lst", "data/imagenet8/sha256sums.txt")}


def assert_nothing_ran(ws):
    made = [path for name in MARKERS for path in ws.rglob(name)]
    assert not made, made


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = copy_repo(tmp_path_factory.mktemp("hostile") / "repo")
    sh(["python", "scripts/make_demo.py", "mnist", MNIST_DIR], ws)
    sh(["python", "scripts/make_demo.py", "imagenet8", "raw/imagenet8"], ws)
    (ws / "raw/imagenet8/imagenet-8.tar").rename(ws / IMAGENET8_TAR)
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["datasets"]["mnist"]["raw_dir"] = MNIST_DIR
    params["datasets"]["imagenet8"]["raw"] = IMAGENET8_TAR
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return ws


def test_dvc_yaml_does_not_depend_on_the_raw_paths(ws):
    sh(["python", "scripts/write_dvc_yaml.py", "--check"], ws)


def test_snakemake_door(ws):
    done = sh(["snakemake", "--cores", "2", *TARGETS], ws, check=False)
    assert_nothing_ran(ws)
    assert done.returncode == 0, done.stderr[-4000:]
    with gzip.open(ws / MNIST_DIR / "t10k-images-idx3-ubyte.gz") as f:
        count = int.from_bytes(f.read(8)[4:], "big")
    lst = (ws / "data/mnist/test.lst").read_text().splitlines()
    assert len(lst) == count and len(list((ws / "data/mnist/images/test").glob("*.png"))) == count
    with tarfile.open(ws / IMAGENET8_TAR) as tar:
        members = sorted(m.name for m in tar.getmembers() if m.isfile())
    listed = sorted(line.split(maxsplit=1)[1] for line in
                    (ws / "data/imagenet8/sha256sums.txt").read_text().splitlines())
    assert listed == members and members
    assert all((ws / "data/imagenet8/images" / name).is_file() for name in members)


def test_dvc_door(ws):
    first = outputs(ws)  # made by the Snakemake door
    done = sh(["dvc", "repro", "mnist_pngs-test", "imagenet8_extract"], ws, check=False)
    assert_nothing_ran(ws)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "Running stage 'mnist_pngs-test'" in done.stdout, done.stdout
    assert "Running stage 'imagenet8_extract'" in done.stdout, done.stdout
    assert outputs(ws) == first
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    assert {dep["path"] for dep in lock["imagenet8_extract"]["deps"]} >= {IMAGENET8_TAR}
