"""ilsvrc_alexnet_eval's scripts: the multi-crop CLI with each weights source, its checks, and a
run over the real ILSVRC2012 val images."""
import csv
import json
import shutil

import pytest
import torch
from conftest import realdata_path
from e2e import run_script_here

from imgdag.demo.ilsvrc import make_demo_ilsvrc_val
from imgdag.demo.imagenet import IMAGENET8_WNIDS
from imgdag.extract import extract_archive
from imgdag.formats.index_table import read_ilsvrc_val_table, write_ilsvrc_val_table
from imgdag.layouts.ilsvrc_val import val_table_from_devkit
from imgdag.models import build_model, save_trained_model
from imgdag.weightfiles import file_sha256


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo val images extracted, and 4-row val tables in the 8-WNID and 1,000-WNID orders."""
    root = tmp_path_factory.mktemp("ilsvrc")
    make_demo_ilsvrc_val(root / "demo")
    extract_archive(root / "demo/ILSVRC2012_img_val.tar", root / "images")
    devkit = root / "demo/ILSVRC2012_devkit_t12.tar.gz"
    for name, classes in (("eight.csv", IMAGENET8_WNIDS), ("all.csv", None)):
        write_ilsvrc_val_table(root / name, val_table_from_devkit(devkit, classes).records("val")[:4])
    return root


def evaluate(monkeypatch, demo, table, model, weights, crops=(1, 10)):
    params = {"weights": weights, "evaluate": {"crops": list(crops), "batch_size": 3, "device": "cpu"}}
    code = run_script_here(monkeypatch, "evaluate_crops.py", "--table", table, "--images", demo / "images",
                      "--model", model, "--params", json.dumps(params), "--num-workers", 0,
                      "--metrics-out", demo / "metrics.json", "--run-info-out", demo / "run_info.json",
                      "--predictions-out", demo / "predictions.csv")
    return code


@pytest.mark.parametrize("name", ["evaluate_crops.py", "model_classes.py"])
def test_help(monkeypatch, capsys, name):
    assert run_script_here(monkeypatch, name, "--help") == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("source, classes, table", [("torchvision", 1000, "all.csv"), ("caffe_npy", 8, "eight.csv")])
def test_pretrained_sources_give_metrics_and_predictions(monkeypatch, demo, source, classes, table):
    torch.manual_seed(0)
    arch = "alexnet" if source == "torchvision" else "caffe_alexnet"
    torch.save({"model": build_model(arch, classes).state_dict()}, demo / "weights.pth")
    sha256 = file_sha256(demo / "weights.pth")
    if source == "caffe_npy":  # the params name the .npy the .pth was converted from: no published hash
        named, published = demo / "bvlc_alexnet.npy", None
        named.write_bytes(b"stands for the .npy")
        sha256 = file_sha256(named)
    else:  # torchvision's file names carry the start of their sha256
        named, published = demo / f"alexnet-{sha256[:8]}.pth", f"torchvision file name ({sha256[:8]})"
        shutil.copyfile(demo / "weights.pth", named)
    weights = {"source": source, "path": str(named)}
    assert evaluate(monkeypatch, demo, demo / table, demo / "weights.pth", weights) == 0
    metrics = json.loads((demo / "metrics.json").read_text())
    info = json.loads((demo / "run_info.json").read_text())
    assert metrics["images"] == 4 and info["images_not_evaluated"] == 92
    assert info["weights"] == {**weights, "sha256": sha256, "published": published,
                               "loaded": str(demo / "weights.pth")}
    assert info["preprocess"]["crop"] == (224 if source == "torchvision" else 227)
    assert set(metrics) == {"images", "1-crop", "10-crop"}  # the headline: 5 figures
    for mode in ("1-crop", "10-crop"):
        m, more = metrics[mode], info[mode]
        assert set(m) == {"top1_error", "top5_error"}
        assert m["top1_error"] == pytest.approx(1 - more["top1_accuracy"], abs=1e-6)
        assert more["top1_correct"] <= more["top5_correct"] <= 4
    with open(demo / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    records = read_ilsvrc_val_table(demo / table)
    assert [(r["file"], int(r["label"])) for r in rows] == [(r.path, r.label) for r in records]
    for row in rows:
        top5 = [int(c) for c in row["top5_10-crop"].split()]
        assert len(set(top5)) == 5 and all(0 <= c < classes for c in top5)
        assert 0 < float(row["p_10-crop"]) <= 1


def test_a_table_not_in_the_model_class_order_is_refused(monkeypatch, capsys, demo):
    model = build_model("lenet5", 8)
    spec = {"size": [28, 28], "channels": 1, "resize": 32, "mean": [0.5], "std": [0.5]}
    save_trained_model(demo / "model.pt", model, "lenet5", IMAGENET8_WNIDS[::-1], spec, {})
    weights = {"source": "imagenet8_checkpoint", "path": str(demo / "model.pt")}
    assert evaluate(monkeypatch, demo, demo / "eight.csv", demo / "model.pt", weights) == 1
    assert "eight.csv: 4 rows disagree with" in capsys.readouterr().err
    save_trained_model(demo / "model.pt", model, "lenet5", IMAGENET8_WNIDS, spec, {})
    assert run_script_here(monkeypatch, "model_classes.py", "--model", demo / "model.pt", "--out", demo / "classes.txt") == 0
    assert (demo / "classes.txt").read_text().split() == IMAGENET8_WNIDS


@pytest.mark.realdata
@pytest.mark.slow
def test_random_alexnet_on_the_real_val_images_in_caffe_label_order(monkeypatch, tmp_path):
    root = realdata_path("ilsvrc2012-val")
    table = tmp_path / "val.csv"
    assert run_script_here(monkeypatch, "write_ilsvrc_val_table.py", "--caffe-val", root / "caffe_val.txt",
                      "--synset-words", root / "synset_words.txt", "--images", root / "images", "--out", table) == 0
    expected = {}
    for line in (root / "labels.txt").read_text().splitlines():
        name, label = line.split(",")
        expected[name.strip().removeprefix("./data/")] = int(label)
    torch.manual_seed(0)
    torch.save(build_model("alexnet", 1000).state_dict(), tmp_path / "alexnet.pth")
    weights = {"source": "torchvision", "path": str(tmp_path / "alexnet.pth")}

    def run(table, crops):
        params = {"weights": weights, "evaluate": {"crops": crops, "batch_size": 50, "device": "cpu"}}
        assert run_script_here(monkeypatch, "evaluate_crops.py", "--table", table, "--images", root / "images",
                          "--model", tmp_path / "alexnet.pth", "--params", json.dumps(params),
                          "--metrics-out", tmp_path / "metrics.json",
                          "--run-info-out", tmp_path / "run_info.json",
                          "--predictions-out", tmp_path / "predictions.csv") == 0
        with open(tmp_path / "predictions.csv") as f:
            metrics = json.loads((tmp_path / "metrics.json").read_text())
            return {**metrics, **json.loads((tmp_path / "run_info.json").read_text())}, \
                list(csv.DictReader(f))

    metrics, rows = run(table, [1])  # every image, one crop
    assert metrics["images"] == 1300 and metrics["images_not_evaluated"] == 0
    assert {r["file"]: int(r["label"]) for r in rows} == expected
    words = [line.split()[0] for line in (root / "synset_words.txt").read_text().splitlines()]
    assert all(words[int(r["label"])] == r["wnid"] for r in rows)
    assert all(len(r["top5_1-crop"].split()) == 5 for r in rows)

    lines = table.read_text().splitlines(keepends=True)
    (tmp_path / "subset.csv").write_text("".join(lines[:11]))  # header + 10 images, all crop modes
    subset_metrics, subset = run(tmp_path / "subset.csv", [1, 5, 10])
    assert subset_metrics["images"] == 10 and subset_metrics["images_not_evaluated"] == 1300 - 10
    assert [r["file"] for r in subset] == [r["file"] for r in rows[:10]]
    top1 = lambda rows: [r["top5_1-crop"].split()[0] for r in rows]  # noqa: E731
    assert top1(subset) == top1(rows[:10])  # batching does not change the predictions
    for mode in ("1-crop", "5-crop", "10-crop"):
        m = subset_metrics[mode]
        assert 0 <= m["top1_correct"] <= m["top5_correct"] <= 10
