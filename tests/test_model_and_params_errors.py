"""A malformed trained-model file, train params that do not fit the model or the images, and a
non-integer labels file of an array cache: each is one error naming the file or the params key,
never a traceback once training or prediction has started."""
import inspect
import json
from importlib import import_module

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from e2e import ROOT, run_script_here
from imgdag.arraycache import read_array_cache
from imgdag.config import config_problems
from imgdag.errors import DataError
from imgdag.model_registry import BUILDERS, MODEL_ARGS, model_builder
from imgdag.models import build_model, load_trained_model, load_weights

SPEC = {"size": [28, 28], "channels": 1, "mean": [0.5], "std": [0.25]}
CLASSES = ["a", "b"]


def trained_model_file(path, **changes):
    """A 2-class lenet5 trained-model file as save_trained_model writes it, with `changes`
    (a value None drops the key)."""
    saved = {"model": build_model("lenet5", 2).state_dict(), "arch": "lenet5", "classes": CLASSES,
             "input": SPEC, "params": {"model_args": {}}}
    saved.update(changes)
    torch.save({k: v for k, v in saved.items() if v is not None}, path)
    return path


# --- trained-model files (load_trained_model: predict, evaluate, evaluate_crops) -------------

BAD_MODEL_FILES = {
    "no params": ({"params": None}, "not a trained-model file written by imgdag (expected a dict with the "
                                    "keys model, arch, classes, input, params; missing: params): "
                                    "delete it to retrain"),
    "unknown arch": ({"arch": "nosuch"}, "(unknown model 'nosuch'; known: lenet5, alexnet, "),
    "classes not a list": ({"classes": "ab"}, "classes: expected a list of class names"),
    "unknown model_args": ({"params": {"model_args": {"bogus": 1}}},
                           "params.model_args: unknown key 'bogus' for lenet5; allowed: in_channels"),
    "input without std": ({"input": {**SPEC, "std": None}}, "input: expected size [H, W], channels"),
    "mean for 3 channels": ({"input": {**SPEC, "mean": [0.5] * 3}}, "a mean and std per channel"),
    "model not a state_dict": ({"model": {"w": [1.0]}}, "model: expected a state_dict"),
    "weights of 10 classes": ({"model": build_model("lenet5", 10).state_dict()},
                              "weights do not fit the lenet5 model the file describes: "
                              "11.weight is [10, 84], the model's is [2, 84]"),
    "a tensor missing": ({"model": {k: v for k, v in build_model("lenet5", 2).state_dict().items()
                                    if k != "0.bias"}},
                         "weights do not fit the lenet5 model the file describes: "
                         "1 of the model's tensors are missing, e.g. 0.bias"),
    "model_args value": ({"params": {"model_args": {"in_channels": "three"}}},
                         "params.model_args: in_channels: 'three', expected 1 or 3"),
}


@pytest.mark.parametrize("case", BAD_MODEL_FILES)
def test_a_malformed_trained_model_file_is_named(tmp_path, case):
    changes, message = BAD_MODEL_FILES[case]
    path = trained_model_file(tmp_path / "model.pt", **changes)
    with pytest.raises(DataError) as e:
        load_trained_model(path, "cpu")
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_a_file_of_another_kind_is_named(tmp_path):
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(DataError, match=r"list\.pt: not a trained-model file written by imgdag "
                                        r"\(expected a dict, found a list\)"):
        load_trained_model(tmp_path / "list.pt", "cpu")


def test_a_good_trained_model_file_loads(tmp_path):
    model, saved = load_trained_model(trained_model_file(tmp_path / "model.pt"), "cpu")
    assert saved["classes"] == CLASSES and model(torch.zeros(1, 1, 28, 28)).shape == (1, 2)


def test_weights_without_batchnorm_counters_load_as_torch_loads_them(tmp_path):
    """Older files (torchvision's ImageNet weights among them) have no BatchNorm
    num_batches_tracked; torch's strict load accepts them, and so must the check in front of it."""
    model = build_model("resnet18_64px", 4)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    fresh = build_model("resnet18_64px", 4)
    fresh.load_state_dict(state)  # torch: fine
    load_weights(build_model("resnet18_64px", 4), tmp_path / "old.pth")
    del state["fc.bias"]
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(DataError, match=r"short.pth: weights do not fit .*1 of the model's tensors are missing, "
                                        r"e.g. fc.bias"):
        load_weights(build_model("resnet18_64px", 4), tmp_path / "short.pth")


def test_predict_rows_go_folder_by_folder(monkeypatch, tmp_path):
    """The order of paths (a/x.png before a-b/x.png), not of their text ('-' sorts before '/')."""
    for name in ("a.png", "a-b/x.png", "a/x.png"):
        (tmp_path / "imgs" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (28, 28)).save(tmp_path / "imgs" / name)
    assert run_script_here(monkeypatch, "predict.py", "--model", trained_model_file(tmp_path / "m.pt"),
                           "--images", tmp_path / "imgs", "--out", tmp_path / "p.csv") == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["a/x.png", "a-b/x.png", "a.png"]


def test_predict_reports_a_model_file_that_does_not_fit_in_one_line(monkeypatch, capsys, tmp_path):
    path = trained_model_file(tmp_path / "model.pt", model=build_model("lenet5", 10).state_dict())
    (tmp_path / "imgs").mkdir()
    Image.new("L", (28, 28)).save(tmp_path / "imgs" / "digit.png")  # an image to predict
    assert run_script_here(monkeypatch, "predict.py", "--model", path, "--images", tmp_path / "imgs",
                           "--out", tmp_path / "p.csv") == 1
    err = capsys.readouterr().err
    assert f"error: {path}: weights do not fit the lenet5 model the file describes" in err
    assert "Traceback" not in err and not (tmp_path / "p.csv").exists()


# --- model_args, normalize and augment in params.yaml (checked before any job) --------------

def builder_keywords(name):
    """The keywords besides num_classes that model `name`'s builder takes (torchvision's
    alexnet passes its **kwargs to AlexNet)."""
    module, builder = model_builder(name)
    built = import_module(module).AlexNet if name == "alexnet" else getattr(import_module(module), builder)
    return {k for k in inspect.signature(built).parameters if k != "num_classes"}


@pytest.mark.parametrize("name", BUILDERS)
def test_model_args_are_the_builders_keywords(name):
    assert set(MODEL_ARGS[name]) == builder_keywords(name)


def problems_with(change):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    change(params["recipes"])
    return config_problems(params, ROOT / "schemas/params.schema.yaml")


MNIST = "recipes.mnist_lenet5.train"
BAD_PARAMS = {
    "unknown model_args": (lambda r: r["mnist_lenet5"]["train"].update(model_args={"bogus": 1}),
                           f"{MNIST}.model_args: unknown key 'bogus' for lenet5; allowed: in_channels"),
    "alexnet model_args": (lambda r: r["imagenet8_alexnet"]["train"]["model_args"].update(drop=0.5),
                           "recipes.imagenet8_alexnet.train.model_args: unknown key 'drop' for alexnet; "
                           "allowed: dropout"),
    "crop_min above crop_max": (lambda r: r["mnist_lenet5"]["train"]["augment"].update(crop_min=27,
                                                                                       crop_max=20),
                                f"{MNIST}.augment: crops of 27..20 pixels (expected 1 <= crop_min <= crop_max)"),
    "crop_max above the images": (lambda r: r["mnist_lenet5"]["train"]["augment"].update(crop_max=30),
                                  f"{MNIST}.augment.crop_max: 30, more than the side of MNIST digits "
                                  "(28x28 grayscale), 28"),
    "tiny crop_max": (lambda r: r["tiny_imagenet_resnet18"]["train"]["augment"].update(crop_max=65),
                      "recipes.tiny_imagenet_resnet18.train.augment.crop_max: 65, more than the side of "
                      "Tiny ImageNet images (64x64 RGB), 64"),
    "3-value mean on MNIST": (lambda r: r["mnist_lenet5"]["train"]["normalize"].update(mean=[0.5] * 3),
                              f"{MNIST}.normalize.mean: 3 values, expected 1, one per channel of "
                              "MNIST digits (28x28 grayscale)"),
    "1-value std on imagenet8": (lambda r: r["imagenet8_alexnet"]["train"]["normalize"].update(std=[0.2]),
                                 "recipes.imagenet8_alexnet.train.normalize.std: 1 values, expected 3"),
    "dropout 2": (lambda r: r["imagenet8_alexnet"]["train"]["model_args"].update(dropout=2.0),
                  "recipes.imagenet8_alexnet.train.model_args: dropout: 2.0, expected a number, 0 <= dropout < 1"),
    "unknown stem": (lambda r: r["tiny_imagenet_resnet18"]["train"].update(model_args={"stem": "bogus"}),
                     "recipes.tiny_imagenet_resnet18.train.model_args: stem: 'bogus', expected 'imagenet' or "
                     "'small'"),
    "3 channels for the digits": (lambda r: r["mnist_lenet5"]["train"].update(model_args={"in_channels": 3}),
                                  f"{MNIST}.model_args.in_channels: 3, expected 1, the channels of MNIST digits"),
    "nesterov without momentum": (lambda r: r["mnist_lenet5"]["train"].update(optimizer="sgd", nesterov=True,
                                                                              momentum=0),
                                  f"{MNIST}.nesterov: true needs a momentum above 0"),
    "warm-up longer than the run": (lambda r: r["mnist_lenet5"]["train"].update(lr_schedule="warmup_cosine",
                                                                                warmup_epochs=1000),
                                    f"{MNIST}.warmup_epochs: 1000, more than epochs"),
    "crop larger than resize": (lambda r: r["imagenet8_alexnet"]["train"]["crop"].update(size=64, resize=32),
                                "recipes.imagenet8_alexnet.train.crop: size 64 is larger than resize 32"),
}

# values the schema bounds: each would make training diverge (NaN), overflow or run for ever
SCHEMA_BOUNDS = {
    "lr": (lambda r: r["mnist_lenet5"]["train"].update(lr=1e9), f"{MNIST}.lr"),
    "momentum": (lambda r: r["mnist_lenet5"]["train"].update(momentum=1), f"{MNIST}.momentum"),
    "weight_decay": (lambda r: r["mnist_lenet5"]["train"].update(weight_decay=5), f"{MNIST}.weight_decay"),
    "gamma": (lambda r: r["mnist_lenet5"]["train"].update(lr_schedule="step", step_epochs=1, gamma=2),
              f"{MNIST}.gamma"),
    "label_smoothing": (lambda r: r["mnist_lenet5"]["train"].update(label_smoothing=1), f"{MNIST}.label_smoothing"),
    "seed": (lambda r: r["mnist_lenet5"]["train"].update(seed=2**40), f"{MNIST}.seed"),
    "std": (lambda r: r["mnist_lenet5"]["train"]["normalize"].update(std=[1e-300]), f"{MNIST}.normalize.std.0"),
    "evaluate device": (lambda r: r["mnist_lenet5"]["evaluate"].update(device="gpu"),
                        "recipes.mnist_lenet5.evaluate.device"),
    "latency_repeats": (lambda r: r["mnist_lenet5"]["evaluate"].update(latency_repeats=10**9),
                        "recipes.mnist_lenet5.evaluate.latency_repeats"),
}


@pytest.mark.parametrize("case", SCHEMA_BOUNDS)
def test_values_out_of_the_schemas_bounds_are_refused(case):
    change, key = SCHEMA_BOUNDS[case]
    problems = problems_with(change)
    assert len(problems) == 1 and problems[0].startswith(key + ":"), problems


def test_the_committed_params_have_no_problem():
    assert problems_with(lambda r: None) == []


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_params_that_would_crash_training_are_refused(case):
    change, message = BAD_PARAMS[case]
    problems = problems_with(change)
    assert len(problems) == 1 and message in problems[0], problems


def test_mnist_packed_in_colour_takes_its_size_and_channels_from_the_rec_options():
    def repacked(r):
        r["mnist_lenet5"]["rec"] = {"pass_through": False, "resize": 32}
        r["mnist_lenet5"]["train"]["augment"].update(crop_max=32)
    problems = problems_with(repacked)
    assert problems == [f"{MNIST}.normalize.{stat}: 1 values, expected 3, one per channel of MNIST digits "
                        "packed without rec.pass_through (32x32 RGB)" for stat in ("mean", "std")]


# --- the same params given to train.py itself, checked against the cache's images -----------

def small_caches(t, labels_dtype=np.int64):
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 4)):
        np.save(t / f"{split}.images.npy", rng.integers(0, 256, (n, 28, 28, 1), np.uint8))
        np.save(t / f"{split}.labels.npy", (np.arange(n) % 2).astype(labels_dtype))


def train(monkeypatch, t, **changes):
    params = {"model": "lenet5", "num_classes": 2, "epochs": 1, "batch_size": 4, "optimizer": "sgd",
              "lr": 0.01, "seed": 0, "checkpoint_every": 1, "device": "cpu",
              "normalize": {"mean": [0.5], "std": [0.25]}, **changes}
    return run_script_here(monkeypatch, "train.py", "--train-cache", t / "train", "--val-cache", t / "val",
                           "--params", json.dumps(params), "--model-out", t / "m.pt",
                           "--log-csv", t / "log.csv", "--checkpoint-dir", t / "ck", "--threads", 1)


TRAIN_CASES = {
    "unknown model_args": ({"model_args": {"bogus": 1}},
                           "train.images.npy: the train params do not fit: model_args: unknown key 'bogus' "
                           "for lenet5; allowed: in_channels"),
    "crops larger than the images": ({"augment": {"crop_min": 30, "crop_max": 30, "max_degrees": 0}},
                                     "train.images.npy: the train params do not fit: augment.crop_max: 30, "
                                     "more than the side of these images, 28"),
    "crop_min above crop_max": ({"augment": {"crop_min": 25, "crop_max": 20, "max_degrees": 10}},
                                "augment: crops of 25..20 pixels (expected 1 <= crop_min <= crop_max)"),
    "3-value normalize": ({"normalize": {"mean": [0.5] * 3, "std": [0.25] * 3}},
                          "train.images.npy: the train params do not fit: normalize.mean: 3 values, expected "
                          "1, one per channel of these images; normalize.std: 3 values, expected 1, one per "
                          "channel of these images"),
}


@pytest.mark.parametrize("case", TRAIN_CASES)
def test_train_refuses_params_that_do_not_fit_before_training(monkeypatch, capsys, tmp_path, case):
    changes, message = TRAIN_CASES[case]
    small_caches(tmp_path)
    assert train(monkeypatch, tmp_path, **changes) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "log.csv").exists()  # no epoch ran


# --- labels of an array cache ---------------------------------------------------------------

def test_a_diverging_run_stops_and_writes_no_model(monkeypatch, capsys, tmp_path):
    """train.py's own params are not the schema's: a loss that is not finite stops it."""
    small_caches(tmp_path)
    assert train(monkeypatch, tmp_path, lr=1e9) == 1
    err = capsys.readouterr().err
    assert "error: --params: the training loss is nan in epoch 1: these params make training diverge" in err, err
    assert "Traceback" not in err and not (tmp_path / "m.pt").exists() and not list((tmp_path / "ck").glob("*.pt"))


def test_float_cache_labels_are_refused(tmp_path):
    small_caches(tmp_path, labels_dtype=np.float64)
    with pytest.raises(DataError, match=r"train\.labels\.npy: expected \(N,\) integer labels, "
                                        r"got \(8,\) float64"):
        read_array_cache(tmp_path / "train")
    small_caches(tmp_path)
    images, labels = read_array_cache(tmp_path / "train")
    assert labels.dtype == np.int64 and len(images) == 8
