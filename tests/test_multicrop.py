"""1/5/10-crop evaluation: crop positions, averaging, metrics, and a real ILSVRC2012 run."""
import numpy as np
import pytest
import torch
import torchvision.transforms as T
from conftest import realdata_path
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision.models import alexnet

from imgdag.errors import DataError
from imgdag.images import imagenet_normalize
from imgdag.models import build_model
from imgdag.multicrop import (
    CAFFE,
    TORCHVISION,
    CropPreprocess,
    ImageFiles,
    evaluate_crops,
    multi_crops,
)

SMALL = CropPreprocess(32, 24, imagenet_normalize)


def random_images(n, h=32, w=32, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, h, w), dtype=np.uint8))


def test_imagenet_normalize_is_torchvisions_to_the_bit():
    """ToTensor's / 255, then Normalize with ImageNet's mean and std (what the pretrained weights
    were trained on)."""
    x = random_images(2, 5, 4)
    expected = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(x.float() / 255)
    assert torch.equal(imagenet_normalize(x), expected)


def tiny_net(classes=10):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, classes)
    )


class ConstantLogits(nn.Module):
    """Logits 0, 1, ..., classes-1 whatever the input: predicts classes-1, classes-2, ..."""

    def __init__(self, classes=10):
        super().__init__()
        self.classes = classes

    def forward(self, x):
        return torch.arange(self.classes, dtype=torch.float32).expand(len(x), -1)


@pytest.mark.parametrize("h, w", [(20, 30), (21, 31)])
def test_crops_match_torchvision_pil_center_five_and_ten_crop(h, w):
    image = random_images(1, h, w)
    pil = Image.fromarray(image[0].permute(1, 2, 0).numpy())
    for n, reference in [(1, [T.CenterCrop(12)(pil)]), (5, T.FiveCrop(12)(pil)), (10, T.TenCrop(12)(pil))]:
        crops = multi_crops(image, 12, n)
        assert crops.shape == (n, 1, 3, 12, 12)
        for crop, ref in zip(crops[:, 0], reference, strict=True):
            np.testing.assert_array_equal(crop.permute(1, 2, 0).numpy(), np.asarray(ref))


@pytest.mark.parametrize("h, w", [(32, 40), (40, 32), (36, 36)])
def test_images_other_than_the_decoded_squares_are_rejected(h, w):
    # the resize + centre square is the codec's, at decode time (ImageFiles), not a second copy here
    with pytest.raises(ValueError, match=f"images are \\({h}, {w}\\), not the 32 px squares"):
        evaluate_crops(tiny_net(), [(random_images(2, h, w), torch.zeros(2))], crops=(1,), preprocess=SMALL)


def test_constant_model_gives_known_counts():
    labels = [9, 7, 0, 5, 4, 9]  # top-1 is 9, top-5 is 9, 8, 7, 6, 5
    loader = [(random_images(3, seed=i), torch.tensor(labels[3 * i : 3 * i + 3])) for i in range(2)]
    result = evaluate_crops(ConstantLogits(), loader, crops=(1, 5, 10), preprocess=SMALL)
    assert result["images"] == 6
    np.testing.assert_array_equal(result["labels"], labels)
    softmax = torch.arange(10.0).softmax(0).numpy()
    for mode in ("1-crop", "5-crop", "10-crop"):
        m = result["metrics"][mode]
        assert (m["top1_correct"], m["top5_correct"]) == (2, 4)
        assert m["top1_accuracy"] == pytest.approx(2 / 6) and m["top5_error"] == pytest.approx(2 / 6)
        np.testing.assert_array_equal(result["predictions"][mode]["classes"], [[9, 8, 7, 6, 5]] * 6)
        np.testing.assert_allclose(result["predictions"][mode]["probs"], [softmax[[9, 8, 7, 6, 5]]] * 6, rtol=1e-6)


def test_ten_crop_of_a_flip_invariant_image_equals_five_crop():
    half = random_images(4, 32, 16)
    symmetric = torch.cat([half, half.flip(-1)], dim=-1)
    loader = [(symmetric, torch.zeros(4, dtype=torch.int64))]
    result = evaluate_crops(tiny_net(), loader, crops=(5, 10), preprocess=SMALL)
    five, ten = result["predictions"]["5-crop"], result["predictions"]["10-crop"]
    np.testing.assert_array_equal(ten["classes"], five["classes"])
    np.testing.assert_allclose(ten["probs"], five["probs"], rtol=1e-6)

    result = evaluate_crops(tiny_net(), [(random_images(4), torch.zeros(4))], crops=(5, 10), preprocess=SMALL)
    assert not np.allclose(result["predictions"]["10-crop"]["probs"], result["predictions"]["5-crop"]["probs"])


def test_modes_evaluated_together_equal_modes_evaluated_alone():
    loader = [(random_images(4, seed=i), torch.arange(4) + i) for i in range(2)]
    together = evaluate_crops(tiny_net(), loader, crops=(1, 5, 10), preprocess=SMALL)
    for n in (1, 5):
        alone = evaluate_crops(tiny_net(), loader, crops=(n,), preprocess=SMALL)
        for key in ("classes", "probs"):
            np.testing.assert_allclose(
                together["predictions"][f"{n}-crop"][key], alone["predictions"][f"{n}-crop"][key], rtol=1e-6
            )


def test_unknown_crop_mode_is_rejected():
    with pytest.raises(ValueError, match="crops"):
        evaluate_crops(tiny_net(), [], crops=(1, 3))


def test_caffe_alexnet_with_the_caffe_preprocessing():
    model = build_model("caffe_alexnet", 10)
    loader = [(random_images(2, 256, 256), torch.tensor([1, 2]))]
    result = evaluate_crops(model, loader, crops=(1, 10), preprocess=CAFFE)
    assert CAFFE.crop == 227 and result["predictions"]["10-crop"]["classes"].shape == (2, 5)


def test_image_files_decode_to_rgb_squares(tmp_path):
    Image.new("L", (50, 40), 128).save(tmp_path / "gray.png")
    Image.new("RGB", (30, 60), (255, 0, 0)).save(tmp_path / "red.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    data = ImageFiles([tmp_path / "gray.png", tmp_path / "red.jpg", tmp_path / "broken.jpg"], [3, 4, 5], 32)
    gray, label = data[0]
    assert gray.shape == (3, 32, 32) and gray.dtype == torch.uint8 and label == 3
    assert data[1][0][:, 16, 16].tolist()[1:] == [0, 0]
    with pytest.raises(DataError, match="broken.jpg"):
        data[2]


@pytest.mark.realdata
def test_random_alexnet_on_real_ilsvrc2012_val_images():
    root = realdata_path("ilsvrc2012-val")
    rows = [line.split(",") for line in (root / "labels.txt").read_text().splitlines()[:16]]
    paths = [root / "images" / name.strip().removeprefix("./data/") for name, _ in rows]
    labels = [int(label) for _, label in rows]
    torch.manual_seed(0)
    model = alexnet(weights=None)
    loader = DataLoader(ImageFiles(paths, labels, TORCHVISION.resize), batch_size=8)
    result = evaluate_crops(model, loader, crops=(1, 5, 10), preprocess=TORCHVISION, device="cpu")

    assert result["images"] == 16
    np.testing.assert_array_equal(result["labels"], labels)
    for mode in ("1-crop", "5-crop", "10-crop"):
        m = result["metrics"][mode]
        assert 0 <= m["top1_correct"] <= m["top5_correct"] <= 16
        assert m["top1_accuracy"] + m["top1_error"] == pytest.approx(1)
        classes = result["predictions"][mode]["classes"]
        assert classes.shape == (16, 5) and classes.min() >= 0 and classes.max() < 1000
        assert (np.diff(result["predictions"][mode]["probs"], axis=1) <= 0).all()
