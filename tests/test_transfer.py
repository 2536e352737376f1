"""Frozen backbones from local weight files, cached features, the head, Kaggle output, log loss."""
import csv
import shutil

import numpy as np
import pytest
import torch
import torchvision
from conftest import realdata_path
from PIL import Image
from sklearn.metrics import log_loss

from imgdag import transfer
from imgdag.errors import DataError
from imgdag.transfer import (
    cached_features,
    feature_cache_key,
    multiclass_log_loss,
    read_submission_columns,
    transfer_head,
    write_kaggle_submission,
)
from imgdag.weightfiles import file_sha256


def load_backbone(name, weights=None, size=None):
    """The frozen backbone cached_features builds for `name` (its size defaulted the same way)."""
    size = size or transfer.BACKBONE_SIZES.get(name, 224)
    return transfer._build_backbone(name, weights, transfer._weights_sha256(name, weights), size, "cpu")


def list_images(folder):
    """The image files under `folder`, as sorted relative posix paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".png"))


def save_random_weights(path, name="resnet18", seed=0, **kw):
    torch.manual_seed(seed)
    torch.save(torchvision.models.get_model(name, weights=None, **kw).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_random_weights(tmp_path_factory.mktemp("weights") / "resnet18.pth")


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(30, 40), (50, 20), (33, 33)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img{i}.jpg")
    Image.fromarray(rng.integers(0, 256, (20, 25), dtype=np.uint8)).save(folder / "sub" / "gray.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_backbone_from_a_local_weight_file_is_frozen_without_classifier(weights):
    backbone = load_backbone("resnet18", weights, size=64)
    assert backbone.pretrained and backbone.weights_sha256 == file_sha256(weights)
    assert (backbone.features, backbone.size) == (512, 64)
    assert isinstance(backbone.model.fc, torch.nn.Identity) and not backbone.model.training
    assert not any(p.requires_grad for p in backbone.model.parameters())
    assert torch.equal(backbone.model.conv1.weight, torch.load(weights)["conv1.weight"])


def test_features_of_a_folder_have_one_row_per_image(weights, images, tmp_path):
    names = list_images(images)
    assert names == ["img0.jpg", "img1.jpg", "img2.jpg", "sub/gray.png"]
    features, ids, path = cached_features("resnet18", weights, images, names, tmp_path / "cache", size=64, batch_size=3)
    assert features.shape == (4, 512) and features.dtype == np.float32 and ids == names
    assert path.exists() and path.parent == tmp_path / "cache"
    backbone = load_backbone("resnet18", weights, size=64)
    direct = transfer.extract_features(backbone, [images / n for n in names], batch_size=4)
    np.testing.assert_allclose(features, direct, rtol=1e-5, atol=1e-6)


def test_cached_features_are_not_recomputed(weights, images, tmp_path, monkeypatch):
    names = list_images(images)
    first, _, path = cached_features("resnet18", weights, images, names, tmp_path, size=64)

    def must_not_run(*args, **kwargs):
        raise AssertionError("features were recomputed")

    monkeypatch.setattr(transfer, "extract_features", must_not_run)
    again, ids, same_path = cached_features("resnet18", weights, images, names, tmp_path, size=64)
    np.testing.assert_array_equal(again, first)
    assert (ids, same_path) == (names, path)


def test_cache_key_changes_with_weights_size_and_images_only(weights, tmp_path):
    copy = shutil.copy(weights, tmp_path / "elsewhere.pth")
    other = save_random_weights(tmp_path / "other.pth", seed=1)
    images = ["a.jpg", "b.jpg"]
    key = feature_cache_key("resnet18", file_sha256(weights), 224, images)
    assert key == feature_cache_key("resnet18", file_sha256(copy), 224, list(images))  # same bytes elsewhere
    changed = [
        feature_cache_key("resnet18", file_sha256(other), 224, images),
        feature_cache_key("resnet18", "random", 224, images),
        feature_cache_key("resnet18", file_sha256(weights), 299, images),
        feature_cache_key("resnet18", file_sha256(weights), 224, images[::-1]),
        feature_cache_key("resnet18", file_sha256(weights), 224, images[:1]),
        feature_cache_key("resnet34", file_sha256(weights), 224, images),
    ]
    assert len({key, *changed}) == 7


@pytest.mark.parametrize("missing", [None, "absent.pth"])
def test_missing_weight_file_warns_and_uses_seeded_random_weights(tmp_path, missing):
    weights = tmp_path / missing if missing else None
    with pytest.warns(UserWarning, match="NO WEIGHT FILE for backbone resnet18.*RANDOM"):
        backbone = load_backbone("resnet18", weights, size=32)
    assert not backbone.pretrained and backbone.weights_sha256 == "random"
    with pytest.warns(UserWarning):
        again = load_backbone("resnet18", weights, size=32)
    assert torch.equal(backbone.model.conv1.weight, again.model.conv1.weight)


def test_weight_file_for_another_model_is_a_data_error(weights):
    with pytest.raises(DataError, match=r"resnet18\.pth: weights do not fit"):
        load_backbone("resnet34", weights)


def test_inception_v3_loads_torchvision_weights_with_the_aux_head(tmp_path):
    path = save_random_weights(tmp_path / "inception.pth", "inception_v3", aux_logits=True, init_weights=False)
    backbone = load_backbone("inception_v3", path)
    assert backbone.pretrained and (backbone.size, backbone.features) == (299, 2048)
    assert backbone.model.AuxLogits is None and backbone.model.transform_input
    with torch.no_grad():
        assert backbone.model(torch.zeros(1, 3, 75, 75)).shape == (1, 2048)


def test_head_shape():
    head = transfer_head(2048 + 2048, 120)
    assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert head[2].p == 0.7 and head[0].out_features == 256
    assert head(torch.zeros(4, 4096)).shape == (4, 120)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_submission_follows_the_sample_header_order(tmp_path):
    (tmp_path / "sample.csv").write_text("id,affenpinscher,beagle,collie\nx,0.3,0.3,0.4\n")
    columns = read_submission_columns(tmp_path / "sample.csv")
    class_names = ["collie", "affenpinscher", "beagle"]  # the model's order
    probs = np.array([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]], dtype=np.float32)
    write_kaggle_submission(tmp_path / "sub.csv", ["img1", "img0"], probs, class_names, columns)
    rows = read_csv(tmp_path / "sub.csv")
    assert rows[0] == ["id", "affenpinscher", "beagle", "collie"]
    assert [r[0] for r in rows[1:]] == ["img1", "img0"]
    values = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    np.testing.assert_allclose(values, [[0.25, 0.25, 0.5], [0.2, 0.7, 0.1]], rtol=1e-6)
    np.testing.assert_allclose(values.sum(1), 1, atol=1e-6)


@pytest.mark.parametrize(
    "ids, probs, classes, problem",
    [
        (["a", "b"], [[0.5, 0.6], [0.5, 0.5]], ["x", "y"], "sum to 1"),
        (["a", "b"], [[1.5, -0.5], [0.5, 0.5]], ["x", "y"], "non-negative"),
        (["a", "a"], [[0.5, 0.5], [0.5, 0.5]], ["x", "y"], "distinct"),
        (["a"], [[0.5, 0.5], [0.5, 0.5]], ["x", "y"], "shape"),
        (["a"], [[0.5, 0.5]], ["x", "z"], "same distinct classes"),
    ],
)
def test_bad_submissions_are_refused(tmp_path, ids, probs, classes, problem):
    with pytest.raises(ValueError, match=problem):
        write_kaggle_submission(tmp_path / "sub.csv", ids, np.array(probs), classes, ["x", "y"])
    assert not (tmp_path / "sub.csv").exists()


def test_bad_sample_header_is_a_data_error(tmp_path):
    (tmp_path / "sample.csv").write_text("name,a,b\n")
    with pytest.raises(DataError, match="sample.csv"):
        read_submission_columns(tmp_path / "sample.csv")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_loss_equals_sklearn(dtype):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 7)) * 3
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(dtype)
    probs[0] = [1, 0, 0, 0, 0, 0, 0]  # a zero probability for the true class is clipped
    y = rng.integers(0, 7, 50)
    y[0] = 3
    expected = log_loss(y, probs, labels=range(7))
    assert multiclass_log_loss(y, probs) == pytest.approx(expected, rel=1e-6)


def test_log_loss_refuses_labels_out_of_range():
    with pytest.raises(ValueError, match="class indices"):
        multiclass_log_loss([0, 2], [[0.5, 0.5], [0.5, 0.5]])


@pytest.mark.realdata
def test_real_dog_breed_images_and_sample_header(weights, tmp_path):
    root = realdata_path("dog-breed-identification")
    columns = read_submission_columns(root / "sample_submission.csv")
    assert len(columns) == 120
    names = list_images(root / "test")[:4]
    features, ids, _ = cached_features("resnet18", weights, root / "test", names, tmp_path, size=64)
    assert features.shape == (4, 512) and np.isfinite(features).all()

    head = transfer_head(512, 120).eval()
    with torch.no_grad():
        probs = head(torch.from_numpy(features)).softmax(1).numpy()
    class_names = sorted(columns, reverse=True)
    write_kaggle_submission(tmp_path / "sub.csv", [n.rsplit(".", 1)[0] for n in ids], probs, class_names, columns)
    rows = read_csv(tmp_path / "sub.csv")
    assert rows[0] == read_csv(root / "sample_submission.csv")[0]
    assert len(rows) == 5
    np.testing.assert_allclose([sum(map(float, r[1:])) for r in rows[1:]], 1, atol=1e-6)
