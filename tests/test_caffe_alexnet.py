"""CaffeAlexNet from a bvlc_alexnet.npy against an independent NumPy forward pass in TF layout."""
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT

from imgdag.errors import DataError
from imgdag.models import build_model
from imgdag.models.caffe_alexnet import (
    CAFFE_BGR_MEAN,
    NPY_SHAPES,
    CaffeAlexNet,
    caffe_normalize,
    state_dict_from_npy,
)


def random_layers(seed=0, num_classes=1000):
    """A dict layer -> [W, b] of bvlc_alexnet.npy's structure; He-scaled so logits are O(1-10)."""
    rng = np.random.default_rng(seed)
    layers = {}
    for name, shape in NPY_SHAPES.items():
        shape = shape[:-1] + (num_classes,) if shape[-1] is None else shape
        fan_in = int(np.prod(shape[:-1]))
        scale = np.sqrt(2.0 / fan_in) * (0.03 if name == "fc8" else 1.0)
        w = (rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float32)
        b = (rng.standard_normal(shape[-1], dtype=np.float32) * 0.1).astype(np.float32)
        layers[name] = [w, b]
    return layers


def save_npy(path, layers):
    np.save(path, np.array(layers, dtype=object), allow_pickle=True)
    return path


@pytest.fixture(scope="module")
def npy(tmp_path_factory):
    layers = random_layers()
    return save_npy(tmp_path_factory.mktemp("caffe") / "bvlc_alexnet.npy", layers), layers


# ---- an independent NumPy forward pass, NHWC with TF-layout weights (as myalexnet does) ----
def np_conv(x, w, b, stride=1, pad=0, groups=1):
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw = w.shape[:2]
    outs = []
    for xg, wg in zip(np.split(x, groups, axis=3), np.split(w, groups, axis=3)):
        win = np.lib.stride_tricks.sliding_window_view(xg, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
        outs.append(np.einsum("nhwcij,ijco->nhwo", win, wg, optimize=True))
    return np.concatenate(outs, axis=3) + b


def np_lrn(x, depth_radius=2, bias=1.0, alpha=2e-05, beta=0.75):
    """tf.nn.local_response_normalization over the channel (last) axis."""
    sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (depth_radius, depth_radius)))
    c = x.shape[3]
    sqr_sum = sum(sq[..., i : i + c] for i in range(2 * depth_radius + 1))
    return x / (bias + alpha * sqr_sum) ** beta


def np_maxpool(x, k=3, s=2):
    return np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s].max(axis=(-2, -1))


def np_alexnet(x, layers):
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    p = {k: [a.astype(np.float64) for a in v] for k, v in layers.items()}
    x = np_maxpool(np_lrn(relu(np_conv(x, *p["conv1"], stride=4))))
    x = np_maxpool(np_lrn(relu(np_conv(x, *p["conv2"], pad=2, groups=2))))
    x = relu(np_conv(x, *p["conv3"], pad=1))
    x = relu(np_conv(x, *p["conv4"], pad=1, groups=2))
    x = np_maxpool(relu(np_conv(x, *p["conv5"], pad=1, groups=2)))
    x = x.reshape(len(x), -1)  # H, W, C flattening
    x = relu(x @ p["fc6"][0] + p["fc6"][1])
    x = relu(x @ p["fc7"][0] + p["fc7"][1])
    return x @ p["fc8"][0] + p["fc8"][1]


def test_logits_match_numpy_tf_layout_forward(npy):
    path, layers = npy
    state, num_classes = state_dict_from_npy(path)
    assert num_classes == 1000
    model = CaffeAlexNet(num_classes).eval()
    model.load_state_dict(state)

    rgb = np.random.default_rng(1).integers(0, 256, (2, 227, 227, 3), dtype=np.uint8)
    bgr = rgb[..., ::-1].astype(np.float64) - np.array(CAFFE_BGR_MEAN)
    expected = np_alexnet(bgr, layers)

    with torch.no_grad():
        logits = model(caffe_normalize(torch.from_numpy(rgb).permute(0, 3, 1, 2))).double().numpy()
    assert logits.shape == (2, 1000)
    assert 1 < np.abs(expected).max() < 30  # a meaningful scale for an absolute tolerance
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


def test_caffe_normalize_is_bgr_mean_subtracted():
    red = torch.zeros(2, 3, 227, 227, dtype=torch.uint8)
    red[:, 0] = 255
    x = caffe_normalize(red)
    assert x.shape == (2, 3, 227, 227) and x.dtype == torch.float32
    torch.testing.assert_close(x[:, 0], torch.full((2, 227, 227), -CAFFE_BGR_MEAN[0]))
    torch.testing.assert_close(x[:, 2], torch.full((2, 227, 227), 255 - CAFFE_BGR_MEAN[2]))


def test_converter_script_writes_a_loadable_pth(npy, tmp_path, monkeypatch):
    path, _ = npy
    out = tmp_path / "caffe_alexnet.pth"
    monkeypatch.setattr(sys, "argv", ["convert_caffe_alexnet.py", str(path), str(out)])
    runpy.run_path(str(ROOT / "scripts/convert_caffe_alexnet.py"), run_name="__main__")
    assert torch.load(out, weights_only=True)["num_classes"] == 1000
    model = build_model("caffe_alexnet", 1000, weights=out)
    state, _ = state_dict_from_npy(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_wrong_key_is_a_data_error_naming_the_file(tmp_path):
    layers = {k: [np.zeros(1), np.zeros(1)] for k in NPY_SHAPES}
    layers["fc9"] = layers.pop("fc8")
    path = save_npy(tmp_path / "renamed.npy", layers)
    with pytest.raises(DataError, match=r"renamed\.npy.*missing \['fc8'\], unexpected \['fc9'\]"):
        state_dict_from_npy(path)


def test_wrong_shape_is_a_data_error_naming_the_file(tmp_path):
    layers = {k: [np.zeros(1), np.zeros(1)] for k in NPY_SHAPES}
    layers["conv1"] = [np.zeros((11, 11, 3, 64), np.float32), np.zeros(64, np.float32)]
    path = save_npy(tmp_path / "narrow.npy", layers)
    with pytest.raises(DataError, match=r"narrow\.npy: layer conv1: expected W \(11, 11, 3, 96\)"):
        state_dict_from_npy(path)


def test_not_a_dict_is_a_data_error(tmp_path):
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "junk.npy").write_bytes(b"junk")
    for name in ("array.npy", "junk.npy"):
        with pytest.raises(DataError, match=name):
            state_dict_from_npy(tmp_path / name)


class Payload:
    """Unpickled, runs `touch <marker>`: what a hostile bvlc_alexnet.npy carries."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.system, (f"touch '{self.marker}'",)


def test_a_pickled_payload_is_refused_unrun(tmp_path):
    marker = tmp_path / "RAN"
    layers = random_layers(num_classes=10)
    layers["conv1"] = [Payload(marker), layers["conv1"][1]]
    path = save_npy(tmp_path / "bvlc_alexnet.npy", layers)
    done = subprocess.run([sys.executable, str(ROOT / "scripts/convert_caffe_alexnet.py"), str(path),
                           str(tmp_path / "out.pth")], capture_output=True, text=True)
    assert done.returncode == 1 and not marker.exists(), done.stderr
    assert done.stderr.splitlines() == [
        f"error: {path}: its pickle names posix.system, which is not an array or a plain container: "
        "refused unread (it could run code); use the published bvlc_alexnet.npy"], done.stderr
    assert not (tmp_path / "out.pth").exists()
