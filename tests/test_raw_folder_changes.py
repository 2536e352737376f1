"""Snakemake sees an image changed, added or renamed inside a raw folder read in place, as DVC
does. The folder's own time shows none of these; the folder's state file stands for it
(rules/raw_state.smk): its job carries the folder's state as a param, a changed param rewrites
the file, and the jobs that read the folder rerun, and only they. Run on imagenet-8's conversion
to `.rec` and Tiny ImageNet's index, both raws as folders; and dvc.yaml for them, where only the
state files' stages depend on the folders."""
import re
import tarfile
import zipfile

import pytest
import yaml

from e2e import copy_repo, sh

pytestmark = pytest.mark.slow
TARGETS = ["data/imagenet8/train.rec", "data/tiny_imagenet/index/train.csv"]


def planned(ws) -> dict:
    """{job: reason} of each job `snakemake -n` plans for TARGETS, a job named by its rule (and
    its dataset, for a state file's job); empty when nothing."""
    out = sh(["snakemake", "-n", *TARGETS], ws).stdout
    jobs = re.findall(r"\nrule (\w+):\n((?:    .*\n)*)", out)
    return {rule + "".join(f"[{d}]" for d in re.findall(r"wildcards: dataset=(\w+)", lines)):
            re.search(r"    reason: (.*)", lines).group(1) for rule, lines in jobs}


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
    assert set(jobs) == {"raw_state[imagenet8]", "raw_state[tiny_imagenet]", "imagenet8_maps",
                         "imagenet8_rec", "tiny_index"}, jobs
    assert jobs["raw_state[imagenet8]"].startswith("Params have changed"), jobs
    assert jobs["raw_state[tiny_imagenet]"].startswith("Params have changed"), jobs
    assert "data/raw_state/imagenet8.txt" in jobs["imagenet8_maps"], jobs
    sh(["snakemake", "--cores", "2", *TARGETS], ws)
    assert planned(ws) == {}


def test_an_image_added_or_renamed_in_a_class_folder_reruns_them_and_reaches_the_map(ws):
    folder = class_folder(ws)
    image = sorted(folder.iterdir())[0]
    added = folder / f"added_{image.name}"
    added.write_bytes(image.read_bytes())
    assert set(planned(ws)) == {"raw_state[imagenet8]", "imagenet8_maps", "imagenet8_rec"}
    sh(["snakemake", "--cores", "2", *TARGETS], ws)
    assert f"{folder.name}/{added.name}" in (ws / "data/imagenet8/train_map.txt").read_text()
    renamed = added.rename(folder / f"renamed_{image.name}")
    assert set(planned(ws)) == {"raw_state[imagenet8]", "imagenet8_maps", "imagenet8_rec"}
    sh(["snakemake", "--cores", "2", *TARGETS], ws)
    listed = (ws / "data/imagenet8/train_map.txt").read_text()
    assert renamed.name in listed and added.name not in listed


def test_in_dvc_yaml_only_the_state_jobs_depend_on_the_raw_folders(ws):
    """`dvc status` walks each raw folder once: the stages of the jobs that read it depend on
    its state file. Their command hashes hold the raw paths as templates, so another folder path
    in params.yaml gives the same dvc.yaml."""
    def stages(raw):
        params = yaml.safe_load((ws / "params.yaml").read_text())
        params["datasets"]["imagenet8"]["raw"] = raw
        (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        sh(["python", "scripts/write_dvc_yaml.py"], ws)
        return yaml.safe_load((ws / "dvc.yaml").read_text())["stages"]

    (ws / "raw/moved").symlink_to("imagenet8")
    try:
        found = stages("raw/imagenet8")
        moved = stages("raw/moved")
    finally:
        stages("raw/imagenet8")
    readers = {name for name, stage in found.items()
               if any(dep.startswith(("${datasets.imagenet8.raw}", "${datasets.tiny_imagenet.raw}"))
                      for dep in stage.get("deps", []))}
    assert readers == {"raw_state-imagenet8", "raw_state-tiny_imagenet"}, readers
    for name, state in (("imagenet8_maps", "imagenet8"), ("imagenet8_rec-train", "imagenet8"),
                        ("tiny_index", "tiny_imagenet"), ("tiny_array-train", "tiny_imagenet")):
        assert {f"data/raw_state/{state}.txt", "data/datasets.checked"} <= set(found[name]["deps"]), name
    assert moved == found
