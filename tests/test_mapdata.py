"""Map-file batches: crops, seeding per (seed, epoch, image), workers, errors; train.py's map flags."""
import json
import runpy
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image

from imgdag.errors import DataError
from imgdag.formats.cntk_map import write_cntk_map
from imgdag.layouts.records import ImageRecord
from imgdag.mapdata import MapBatches, random_resized_box, resize_center_crop

CPU = torch.device("cpu")
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


@pytest.fixture
def images(tmp_path):
    """A map file of 10 noise images of varied sizes (one grayscale), paths relative to tmp_path."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(10):
        h, w = (int(v) for v in rng.integers(40, 90, size=2))
        mode = "L" if i == 3 else "RGB"
        pixels = rng.integers(0, 256, (h, w) if mode == "L" else (h, w, 3), dtype=np.uint8)
        (tmp_path / "img").mkdir(exist_ok=True)
        Image.fromarray(pixels, mode).save(tmp_path / f"img/{i}.png")
        records.append(ImageRecord(f"img/{i}.png", i % 4, str(i % 4)))
    write_cntk_map(tmp_path / "map.txt", records)
    return tmp_path


def batches(root, **kw):
    return MapBatches(root / "map.txt", 4, CPU, MEAN, STD, crop=32, image_root=root, **kw)


def collect(b, epoch):
    xs, ys = zip(*b.epoch(epoch))
    return torch.cat(xs), torch.cat(ys)


def test_eval_batches_are_resized_centre_crops_in_map_order(images):
    b = batches(images, resize=36)
    assert len(b) == 3
    x, y = collect(b, 0)
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.float32
    assert y.tolist() == [i % 4 for i in range(10)]
    with Image.open(images / "img/7.png") as image:
        expected = np.asarray(resize_center_crop(image.convert("RGB"), 36, 32), dtype=np.float32)
    torch.testing.assert_close(x[7], (torch.from_numpy(expected).permute(2, 0, 1) - 127.5) / 63.75)
    torch.testing.assert_close(collect(b, 5)[0], x)  # no randomness in evaluation


def test_train_epochs_repeat_from_seed_and_epoch_whatever_the_workers(images):
    plain = batches(images, train=True, seed=3)
    x1, y1 = collect(plain, 1)
    x2, y2 = collect(plain, 2)
    assert sorted(y1.tolist()) == sorted(y2.tolist()) and y1.tolist() != y2.tolist()
    assert not torch.equal(x1, x2)
    with_workers = batches(images, train=True, seed=3, num_workers=2)
    for epoch, (x, y) in ((2, (x2, y2)), (1, (x1, y1))):  # any epoch order, persistent workers
        wx, wy = collect(with_workers, epoch)
        assert torch.equal(wx, x) and torch.equal(wy, y)
    assert not torch.equal(collect(batches(images, train=True, seed=4), 1)[0], x1)


def test_random_resized_box_stays_inside_with_area_and_aspect_in_range():
    rng = np.random.default_rng(0)
    boxes = [random_resized_box(100, 80, rng, min_scale=0.3) for _ in range(300)]
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= 100 and 0 <= top < bottom <= 80
        w, h = right - left, bottom - top
        assert 0.3 * 8000 * 0.97 <= w * h and 3 / 4 * 0.95 <= w / h <= 4 / 3 * 1.05
    assert len(set(boxes)) > 250
    # far from the aspect range, the fallback is the largest centred box within it
    assert random_resized_box(200, 30, rng, 0.99) == (80, 0, 120, 30)
    assert random_resized_box(30, 200, rng, 0.99) == (0, 80, 30, 120)


def test_resize_center_crop_keeps_the_centre():
    image = Image.new("RGB", (120, 60), (0, 0, 255))
    image.paste((255, 0, 0), (50, 20, 70, 40))
    crop = np.asarray(resize_center_crop(image, 40, 20))
    assert crop.shape == (20, 20, 3) and tuple(crop[10, 10]) == (255, 0, 0)


def test_missing_and_undecodable_images_name_the_file(images):
    (images / "img/5.png").write_bytes(b"not a png")
    for workers in (0, 2):
        with pytest.raises(DataError, match="5.png: not a decodable image"):
            collect(batches(images, num_workers=workers), 0)
    (images / "img/5.png").unlink()
    with pytest.raises(DataError, match=r"map.txt: 1 listed images are not files, e.g. .*5.png"):
        batches(images)


def train_exit_code(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["train.py", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(ROOT / "scripts/train.py"), run_name="__main__")
    return e.value.code


def test_train_script_checks_its_map_inputs(monkeypatch, capsys, images):
    params = {"model": "alexnet", "num_classes": 4, "epochs": 1, "batch_size": 4, "optimizer": "sgd", "lr": 0.1,
              "seed": 0, "checkpoint_every": 1, "device": "cpu", "normalize": {"mean": MEAN, "std": STD},
              "crop": {"size": 64, "resize": 73}}
    common = ["--train-map", images / "map.txt", "--image-root", images, "--model-out", images / "m.pt",
              "--log-csv", images / "log.csv", "--checkpoint-dir", images / "ck"]
    assert train_exit_code(monkeypatch, *common, "--params", json.dumps(params)) == 2
    assert "--train-map and --val-map" in capsys.readouterr().err
    common += ["--val-map", images / "map.txt"]
    (images / "classes.txt").write_text("a\nb\nc\n")
    classes = ["--classes", images / "classes.txt"]
    assert train_exit_code(monkeypatch, *common, "--params", json.dumps(params), *classes) == 1
    assert "classes.txt: 3 classes but num_classes is 4" in capsys.readouterr().err
    assert train_exit_code(monkeypatch, *common, "--params", json.dumps({**params, "num_classes": 3})) == 1
    assert "map.txt: line 4: label 3 is outside 0..2 (num_classes 3" in capsys.readouterr().err
