"""Image batches from map files and .rec files: crops, seeding per (seed, epoch, image), workers,
DDP shards, errors; train.py's map flags."""
import json
import runpy
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image
from torchvision.transforms import functional as TF

from imgdag.codec import read_rgb_file, resize_center_crop
from imgdag.errors import DataError
from imgdag.formats.cntk_map_writer import write_cntk_map
from imgdag.formats.lst import LstEntry, write_lst
from imgdag.formats.recordio import IRHeader, RecordReader, pack_record
from imgdag.formats.recordio_packer import PackOptions, pack
from imgdag.formats.recordio_writer import RecordWriter
from imgdag.imagedata import ImageBatches, MapFileImages, RecordImages, random_resized_box
from imgdag.layouts.records import ImageRecord

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
    write_lst(tmp_path / "all.lst", [LstEntry(i, (float(r.label),), r.path) for i, r in enumerate(records)])
    pack(tmp_path / "all.lst", tmp_path, tmp_path / "all.rec", tmp_path / "all.idx", PackOptions(pass_through=True))
    return tmp_path


def batches(root, source="map", batch_size=4, **kw):
    images = MapFileImages(root / "map.txt", root) if source == "map" else RecordImages(root / "all.rec")
    return ImageBatches(images, batch_size, CPU, MEAN, STD, crop=32, **kw)


def collect(b, epoch):
    """The epoch's batches, each copied as it comes (as a training step would use it)."""
    xs, ys = zip(*((x.clone(), y.clone()) for x, y in b.epoch(epoch)))
    return torch.cat(xs), torch.cat(ys)


def test_eval_batches_are_resized_centre_crops_in_map_order(images):
    b = batches(images, resize=36)
    assert len(b) == 3
    x, y = collect(b, 0)
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.float32
    assert y.tolist() == [i % 4 for i in range(10)]
    expected = torch.from_numpy(resize_center_crop(read_rgb_file(images / "img/7.png"), 36, 32))
    # normalised as torchvision's ToTensor + Normalize, to the bit
    assert torch.equal(x[7], TF.normalize(expected.permute(2, 0, 1).float() / 255, MEAN, STD))
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


def test_an_epoch_left_early_leaves_the_next_one_whole(images):
    """Decoding threads run ahead of the batch in use: an epoch abandoned after one batch (a
    break, an error) must not leak its crops into the next epoch asked for."""
    threaded = batches(images, train=True, seed=3, batch_size=2, num_workers=2)
    first = [t.clone() for t in next(iter(threaded.epoch(1)))]
    x, y = collect(threaded, 1)
    assert torch.equal(x[:2], first[0]) and torch.equal(y[:2], first[1])
    reference = collect(batches(images, train=True, seed=3, batch_size=2), 1)
    assert torch.equal(x, reference[0]) and torch.equal(y, reference[1])


@pytest.mark.parametrize("workers", [0, 2])
def test_batch_memory_is_reused_only_once_the_caller_lets_go(images, workers):
    """CPU batches reuse their memory (no fresh pages per step), but never one the caller
    still holds, whole or as a view."""
    b = batches(images, train=True, seed=3, batch_size=1, num_workers=workers)
    reference = collect(b, 1)
    kept = list(b.epoch(1))  # every batch held, uncopied
    views = [x[0] for x, _ in b.epoch(1)]  # only a view of each held
    for held in (torch.cat([x for x, _ in kept]), torch.stack(views)):
        assert torch.equal(held, reference[0])
    addresses = {x.data_ptr() for x, _ in b.epoch(1)}  # each batch let go after its step
    assert len(addresses) <= ImageBatches.PREFETCH_BATCHES + 3 < len(reference[1])


@pytest.mark.parametrize("workers", [0, 2])
def test_cpu_batch_memory_outlives_the_epoch_and_its_short_last_batch(images, workers, allocated):
    """The next epoch writes into the float memory of the last one (no fresh pages per epoch);
    a short last batch takes fresh memory and leaves the full batches' arrays to the next epoch."""
    b = batches(images, train=True, seed=3, num_workers=workers)
    assert [len(y) for _, y in b.epoch(0)] == [4, 4, 2]
    first = len(allocated)
    assert 1 <= first <= 2
    again = [(x.data_ptr(), x.clone()) for x, _ in b.epoch(1)]
    assert len(allocated) == first, "epoch 1 took fresh arrays"
    assert all(address in allocated for address, _ in again[:2])
    fresh = collect(batches(images, train=True, seed=3, num_workers=workers), 1)[0]
    assert torch.equal(torch.cat([x for _, x in again]), fresh)


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


@pytest.mark.parametrize("workers", [0, 2])
def test_rec_batches_equal_map_batches_and_resume_from_seed_and_epoch(images, workers):
    """The same image bytes through a .rec: the same labels, crops and order, epoch by epoch,
    with or without workers; a fresh loader asked for epoch 2 gives what a run reaching it did."""
    for train in (False, True):
        from_map = batches(images, train=train, seed=5)
        from_rec = batches(images, "rec", train=train, seed=5, num_workers=workers)
        assert from_rec.labels == from_map.labels == [i % 4 for i in range(10)]
        for epoch in (0, 1):
            x_map, y_map = collect(from_map, epoch)
            x_rec, y_rec = collect(from_rec, epoch)
            assert x_rec.is_contiguous() and torch.equal(x_rec, x_map) and torch.equal(y_rec, y_map)
    resumed = collect(batches(images, "rec", train=True, seed=5, num_workers=workers), 1)
    assert torch.equal(resumed[0], x_rec) and torch.equal(resumed[1], y_rec)


def test_each_epoch_draws_new_crops_of_every_image(images):
    b = batches(images, "rec", train=True, seed=5)
    crops = []
    for epoch in (0, 1):
        x, _ = collect(b, epoch)
        crops.append(x[np.argsort(b.sampler.shard())])  # rows back in image order
    assert all(not torch.equal(a, c) for a, c in zip(*crops))


def test_rec_labels_come_from_headers_with_one_or_packed_labels(tmp_path):
    png = (b"\x89PNG" + b"x" * 40)  # label_at reads headers only: the image bytes are never decoded
    with RecordWriter(tmp_path / "l.rec", tmp_path / "l.idx") as writer:
        writer.write(0, pack_record(IRHeader(0, 3.0, 0, 0), None, png))
        writer.write(1, pack_record(IRHeader(0, 0.0, 1, 0), [5.0, 0.25], png))
        writer.write(2, pack_record(IRHeader(0, 0.0, 2, 0), [7.0], b""))  # header + label, nothing else
    reader = RecordReader(tmp_path / "l.rec")
    assert [reader.label_at(o) for o in reader.offsets] == [3.0, 5.0, 7.0]
    assert RecordImages(tmp_path / "l.rec").labels == [3, 5, 7]


@pytest.mark.parametrize("train", [False, True])
def test_ddp_shards_are_disjoint_complete_and_slices_of_the_one_process_batches(images, train):
    one = batches(images, "rec", train=train, seed=2)
    ranks = [batches(images, "rec", train=train, seed=2, rank=r, world_size=2) for r in (0, 1)]
    shards = [b.sampler.shard() for b in ranks]
    assert len(shards[0]) == len(shards[1]) == 5 and len(ranks[0]) == len(ranks[1]) == 3
    assert set(shards[0]).isdisjoint(shards[1]) and sorted([*shards[0], *shards[1]]) == list(range(10))
    (x, y), parts = next(iter(one.epoch(1))), [next(iter(b.epoch(1))) for b in ranks]
    for rank, (x_rank, y_rank) in enumerate(parts):  # global batch 4: each rank has 2 of them
        assert torch.equal(x_rank, x[rank::2]) and torch.equal(y_rank, y[rank::2])


def test_ddp_training_pads_an_odd_count_so_ranks_step_together(images):
    lines = (images / "map.txt").read_text().splitlines()[:9]
    (images / "map.txt").write_text("\n".join(lines) + "\n")
    shards = [batches(images, train=True, rank=r, world_size=2).sampler.shard() for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 5 and set(shards[0]) | set(shards[1]) == set(range(9))
    evaluation = [batches(images, rank=r, world_size=2).sampler.shard() for r in (0, 1)]
    assert sorted([*evaluation[0], *evaluation[1]]) == list(range(9))  # evaluation: no repeats
    with pytest.raises(ValueError, match="batch size 4 does not split over 3 processes"):
        batches(images, rank=0, world_size=3)


def test_a_bad_record_is_named_by_rec_path_and_key(tmp_path):
    with RecordWriter(tmp_path / "b.rec", tmp_path / "b.idx") as writer:
        writer.write(5, pack_record(IRHeader(0, 0.0, 5, 0), None, b"junk"))
    for workers in (0, 2):
        with pytest.raises(DataError, match=r"b\.rec record 5: not a decodable image"):
            next(iter(ImageBatches(RecordImages(tmp_path / "b.rec"), 1, CPU, MEAN, STD, 8,
                                   num_workers=workers).epoch(0)))


def test_missing_and_undecodable_images_name_the_file(images):
    (images / "img/5.png").write_bytes(b"not a png")
    for workers in (0, 2):
        with pytest.raises(DataError, match="5.png: not a decodable image"):
            collect(batches(images, num_workers=workers), 0)
    (images / "img/5.png").unlink()
    with pytest.raises(DataError, match=r"map.txt: 1 listed images are not files, e.g. .*5.png"):
        batches(images)


def train_exit_code(monkeypatch, *args):
    # torch is loaded in this process already: no ISA pin (the pin is tested in test_threads)
    monkeypatch.setattr(sys, "argv", ["train.py", *map(str, args), "--cpu-isa", "host"])
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


@pytest.mark.parametrize("source", ["map", "rec"])
def test_the_image_lists_of_a_large_dataset_take_little_memory_per_image(tmp_path, source):
    """What a loader holds per image: a .rec's key and offset in arrays (16 bytes) and its
    label; a map's path string and label (Python ints and Path objects took 100 and 350 bytes
    an image here)."""
    import tracemalloc

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    payload = pack_record(IRHeader(0, 1.0, 0, 0), None, (tmp_path / "a.png").read_bytes())

    def held(count: int) -> int:
        if source == "map":
            (tmp_path / "map.txt").write_text("a.png\t1\n" * count)
        else:
            with RecordWriter(tmp_path / "all.rec", tmp_path / "all.idx") as w:
                for i in range(count):
                    w.write(i, payload)
        tracemalloc.start()
        try:
            images = MapFileImages(tmp_path / "map.txt", tmp_path) if source == "map" else \
                RecordImages(tmp_path / "all.rec")
            assert len(images.labels) == count
            return tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    per_image = (held(8000) - held(2000)) / 6000
    path_string = sys.getsizeof(str(tmp_path / "a.png"))  # about 130 bytes here
    assert per_image < (path_string + 40 if source == "map" else 30), f"{per_image:.0f} bytes an image"
