"""Snakemake sees an image changed, added or renamed inside a raw folder read in place, as DVC
does (each of its stages depends on the folder's files). The folder's own time shows none of
these; the jobs that read the folder carry its state as a param (rules/common.smk
raw_folder_state), and a changed param reruns them, and only them. Run on imagenet-8's conversion
to `.rec` and Tiny ImageNet's index, both raws as folders."""
import re
import tarfile
import zipfile

import pytest
import yaml

from e2e import copy_repo, sh

pytestmark = pytest.mark.slow
TARGETS = ["data/imagenet8/train.rec", "data/tiny_imagenet/index/train.csv"]


def planned(ws) -> dict:
    """{rule: reason} of each job `snakemake -n` plans for TARGETS; empty when nothing."""
    out = sh(["snakemake", "-n", *TARGETS], ws).stdout
    return dict(re.findall(r"\nrule (\w+):\n(?:    .*\n)*?    reason: (.*)", out))


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A copy of the repository whose imagenet-8 and Tiny raws are the demo's trees as folders,
    converted."""
    ws = copy_repo(tmp_path_factory.mktemp("raw-folder") / "repo")
    sh(["python", "scripts/make_demo.py", "imagenet8", "raw/demo-imagenet8"], ws)  # a folder each:
    sh(["python", "scripts/make_demo.py", "tiny_imagenet", "raw/demo-tiny"], ws)  # it is rewritten
    with tarfile.open(ws / "raw/demo-imagenet8/imagenet-8.tar") as tar:
        tar.extractall(ws / "raw/imagenet8", filter="data")
    with zipfile.ZipFile(ws / "raw/demo-tiny/tiny-imagenet-200.zip") as archive:
        archive.extractall(ws / "raw/tiny")
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["datasets"]["imagenet8"]["raw"] = "raw/imagenet8"
    params["datasets"]["tiny_imagenet"]["raw"] = "raw/tiny/tiny-imagenet-200"
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["snakemake", "--cores", "2", *TARGETS], ws)
    assert planned(ws) == {}
    return ws


def class_folder(ws):
    return sorted((ws / "raw/imagenet8/train").iterdir())[0]


def rewrite_first(folder):
    """The first image of `folder` rewritten with the second's bytes: same name, other pixels
    (the folder's own time stays)."""
    first, second = sorted(folder.iterdir())[:2]
    first.write_bytes(second.read_bytes())


def test_an_image_rewritten_in_place_reruns_the_jobs_that_read_the_folder(ws):
    rewrite_first(class_folder(ws))
    rewrite_first(sorted((ws / "raw/tiny/tiny-imagenet-200/train").iterdir())[0] / "images")
    jobs = planned(ws)
    assert set(jobs) == {"imagenet8_maps", "imagenet8_rec", "tiny_index"}, jobs
    assert jobs["imagenet8_maps"].startswith("Params have changed"), jobs
    assert jobs["tiny_index"].startswith("Params have changed"), jobs
    sh(["snakemake", "--cores", "2", *TARGETS], ws)
    assert planned(ws) == {}


def test_an_image_added_or_renamed_in_a_class_folder_reruns_them_and_reaches_the_map(ws):
    folder = class_folder(ws)
    image = sorted(folder.iterdir())[0]
    added = folder / f"added_{image.name}"
    added.write_bytes(image.read_bytes())
    assert set(planned(ws)) == {"imagenet8_maps", "imagenet8_rec"}
    sh(["snakemake", "--cores", "2", *TARGETS], ws)
    assert f"{folder.name}/{added.name}" in (ws / "data/imagenet8/train_map.txt").read_text()
    renamed = added.rename(folder / f"renamed_{image.name}")
    assert set(planned(ws)) == {"imagenet8_maps", "imagenet8_rec"}
    sh(["snakemake", "--cores", "2", *TARGETS], ws)
    listed = (ws / "data/imagenet8/train_map.txt").read_text()
    assert renamed.name in listed and added.name not in listed
