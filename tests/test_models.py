"""The model registry, local weight files, and ResNet-18 for 64 px."""
import pytest
import torch
from torch import nn

from imgdag.errors import DataError
from imgdag.models import build_model, read_state_dict
from imgdag.models.resnet_small import resnet18_64px


def layer4_size(model, size=64):
    seen = []
    model.layer4.register_forward_hook(lambda m, i, o: seen.append(o.shape[-2:]))
    with torch.no_grad():
        logits = model.eval()(torch.zeros(2, 3, size, size))
    return logits.shape, tuple(seen[0])


def test_resnet18_64px_imagenet_stem():
    model = resnet18_64px(200, stem="imagenet")
    assert (model.conv1.kernel_size, model.conv1.stride) == ((7, 7), (2, 2))
    assert isinstance(model.maxpool, nn.MaxPool2d)
    assert layer4_size(model) == ((2, 200), (2, 2))


def test_resnet18_64px_small_stem():
    model = resnet18_64px(200, stem="small")
    assert (model.conv1.kernel_size, model.conv1.stride, model.conv1.padding) == ((3, 3), (1, 1), (1, 1))
    assert isinstance(model.maxpool, nn.Identity)
    assert layer4_size(model) == ((2, 200), (8, 8))


def test_resnet18_64px_rejects_unknown_stem():
    with pytest.raises(ValueError, match="stem"):
        resnet18_64px(10, stem="cifar")


@pytest.mark.parametrize(
    "name, kw, size",
    [
        ("alexnet", {}, 64),  # torchvision AlexNet's smallest input is 63 px
        ("resnet18_64px", {"stem": "small"}, 64),
        ("caffe_alexnet", {}, 227),
    ],
)
def test_build_model_gives_class_logits(name, kw, size):
    model = build_model(name, 8, **kw).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 8)


def test_build_model_lenet5_is_referenced():
    pytest.importorskip("imgdag.models.lenet", reason="imgdag.models.lenet lives on main")
    assert isinstance(build_model("lenet5", 10), nn.Module)


def test_build_model_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown model 'vgg99'"):
        build_model("vgg99", 10)


@pytest.mark.parametrize("checkpoint", [False, True])
def test_build_model_loads_a_local_weight_file(tmp_path, checkpoint):
    source = resnet18_64px(10, stem="small")
    state = source.state_dict()
    torch.save({"model": state, "epoch": 3} if checkpoint else state, tmp_path / "w.pth")
    model = build_model("resnet18_64px", 10, weights=tmp_path / "w.pth", stem="small")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_weights_that_do_not_fit_are_a_data_error(tmp_path):
    torch.save(resnet18_64px(10).state_dict(), tmp_path / "ten.pth")
    with pytest.raises(DataError, match=r"ten\.pth: weights do not fit ResNet"):
        build_model("resnet18_64px", 20, weights=tmp_path / "ten.pth")


def test_a_file_that_is_not_a_state_dict_is_a_data_error(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"junk\.pth: not a file of tensors.*expected a PyTorch state_dict"):
        read_state_dict(tmp_path / "junk.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(DataError, match=r"list\.pth: expected a state_dict"):
        read_state_dict(tmp_path / "list.pth")
