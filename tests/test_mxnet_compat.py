"""Compatibility with MXNet 1.9.1, the reference: MXNet reads our .rec, we read im2rec's.

Runs MXNet in the optional environment .venv-mxnet (bash scripts/setup_mxnet_env.sh) through
the helper scripts in tests/mxnet_helpers/, which save what MXNet sees to .npz files.
"""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, realdata_path
from PIL import Image

from imgdag.codec import decode_gray, decode_rgb, decode_stored
from imgdag.formats.lst import LstEntry, iter_image_folder, read_lst, write_im2rec_lst_files, write_lst
from imgdag.formats.recordio import (
    MAGIC_BYTES,
    IRHeader,
    RecordReader,
    pack_record,
    read_idx,
    scan_index,
)
from imgdag.formats.recordio_packer import PackOptions, pack
from imgdag.formats.recordio_writer import RecordWriter

MXNET_PYTHON = ROOT / ".venv-mxnet" / "bin" / "python"
HELPERS = Path(__file__).parent / "mxnet_helpers"

pytestmark = [
    pytest.mark.mxnet,
    pytest.mark.skipif(
        not MXNET_PYTHON.exists(),
        reason=f"the MXNet environment {MXNET_PYTHON} is absent (create it: bash scripts/setup_mxnet_env.sh)",
    ),
]


def mxnet(*args, cwd=None) -> str:
    """Run .venv-mxnet's Python with `args`; its stdout, failing the test on a non-zero exit."""
    result = subprocess.run([str(MXNET_PYTHON), *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, f"MXNet command failed: {args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def mx_read(tmp_path, rec, idx=None, iscolor=None, raw=False) -> dict:
    """What MXNet's recordio module reads from `rec` (see mxnet_helpers/read_rec.py)."""
    out = tmp_path / f"mx-{Path(rec).stem}-{iscolor}.npz"
    options = (["--idx", idx] if idx else []) + (["--iscolor", iscolor] if iscolor is not None else [])
    options += ["--raw"] if raw else []
    mxnet(HELPERS / "read_rec.py", rec, out, *options)
    with np.load(out) as data:
        return dict(data)


def mx_records(seen: dict) -> list[dict]:
    """Per record: key, payload, and (unless read raw) header, labels, decoded image (if any)."""
    records = []
    for i in range(len(seen["keys"])):
        record = {"key": int(seen["keys"][i]), "payload": seen[f"payload_{i}"].tobytes()}
        if "flag" in seen:
            fields = (int(seen["flag"][i]), float(seen["label"][i]), int(seen["id"][i]), int(seen["id2"][i]))
            record.update(header=IRHeader(*fields), labels=seen[f"labels_{i}"].tolist(), image=seen.get(f"image_{i}"))
        records.append(record)
    return records


def image_record_iter(tmp_path, rec, idx, label_width):
    """(data, labels) of one epoch of mx.io.ImageRecordIter over `rec`: 16x20 RGB, batches of 2."""
    out = tmp_path / "iter.npz"
    options = ["--shape", "3,16,20", "--batch-size", 2, "--label-width", label_width] + (["--idx", idx] if idx else [])
    mxnet(HELPERS / "image_record_iter.py", rec, out, *options)
    with np.load(out) as seen:
        return seen["data"], seen["label"]


@pytest.fixture(scope="module")
def im2rec():
    """Path of tools/im2rec.py in the MXNet wheel."""
    code = "import mxnet, os; print(os.path.join(os.path.dirname(mxnet.__file__), 'tools', 'im2rec.py'))"
    path = Path(mxnet("-c", code).strip().splitlines()[-1])
    assert path.is_file(), f"im2rec.py is not where the wheel should have it: {path}"
    return path


def run_im2rec(im2rec, workdir, lst, root, *flags):
    """Copy `lst` alone into `workdir` and run im2rec.py on it there; returns (.rec, .idx)."""
    workdir.mkdir()
    shutil.copy(lst, workdir / "data.lst")
    mxnet(im2rec, workdir / "data", root, *flags)
    return workdir / "data.rec", workdir / "data.idx"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Class folders of PNGs and JPEGs (RGB, grayscale, RGBA, one with EXIF orientation 6),
    and .lst files: mixed (some entries with 3 labels), uniform (all 16x20 RGB PNGs, one
    label) and three (the same with 3 labels each)."""
    base = tmp_path_factory.mktemp("mxnet-images")
    root, rng = base / "images", np.random.default_rng(0)
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(root / f"cat/{i}.png")
    smooth = np.linspace(0, 255, 24 * 18 * 3).reshape(24, 18, 3).astype(np.uint8)
    Image.fromarray(smooth).save(root / "cat/photo.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (12, 15), dtype=np.uint8)).save(root / "dog/gray.png")
    Image.fromarray(rng.integers(0, 256, (10, 10, 4), dtype=np.uint8)).save(root / "dog/alpha.png")
    rotated = Image.fromarray(smooth[:, :10])
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rotated.save(root / "dog/exif6.jpg", exif=exif, quality=90)

    paths = ["cat/0.png", "cat/1.png", "cat/photo.jpg", "dog/gray.png", "dog/alpha.png", "dog/exif6.jpg", "cat/2.png"]
    mixed = [LstEntry(10 + i, (float(i % 2),) if i % 3 else (float(i), 0.5, -1.0), p) for i, p in enumerate(paths)]
    uniform = [LstEntry(i, (float(i),), f"cat/{i}.png") for i in range(4)]
    three = [LstEntry(i, (float(i), 0.25, 2.0), f"cat/{i}.png") for i in range(4)]
    for name, entries in [("mixed", mixed), ("uniform", uniform), ("three", three)]:
        write_lst(base / f"{name}.lst", entries)
    return root, base


def rgb(mx_image):
    """An image from cv2 (BGR, or 2-D grayscale) as (H, W, C) RGB."""
    return mx_image[:, :, None] if mx_image.ndim == 2 else mx_image[:, :, ::-1]


@pytest.mark.parametrize("encoding, tolerance", [(".png", 0), (".jpg", 1)])
def test_mxnet_reads_every_record_we_pack(images, tmp_path, encoding, tolerance):
    root, base = images
    entries = read_lst(base / "mixed.lst")
    pack(base / "mixed.lst", root, tmp_path / "ours.rec", tmp_path / "ours.idx", PackOptions(encoding=encoding))
    seen = mx_records(mx_read(tmp_path, tmp_path / "ours.rec", tmp_path / "ours.idx", iscolor=1))
    assert [r["key"] for r in seen] == [e.index for e in entries]
    ours = RecordReader(tmp_path / "ours.rec")
    for entry, mx_record, record in zip(entries, seen, ours, strict=True):
        flag = len(entry.labels) if len(entry.labels) > 1 else 0
        assert mx_record["header"] == record.header == (flag, 0.0 if flag else entry.labels[0], entry.index, 0)
        assert mx_record["labels"] == list(entry.labels)
        pixels = decode_rgb(record.image, "t")
        assert pixels.shape == rgb(mx_record["image"]).shape
        assert np.abs(pixels.astype(int) - rgb(mx_record["image"])).max() <= tolerance, entry.path


def part_cflags(rec_path) -> list[list[int]]:
    """The cflags of each record's parts, read from the frames (a record ends at cflag 0 or 3)."""
    data, offset, records, parts = Path(rec_path).read_bytes(), 0, [], []
    while offset < len(data):
        magic, lrec = np.frombuffer(data[offset:offset + 8], "<u4")
        assert magic.tobytes() == MAGIC_BYTES, f"no frame at byte {offset}"
        length, cflag = int(lrec) & (2**29 - 1), int(lrec) >> 29
        parts.append(cflag)
        if cflag in (0, 3):
            records.append(parts)
            parts = []
        offset += 8 + length + (-length % 4)
    assert not parts
    return records


def expected_cflags(payload: bytes) -> list[int]:
    """dmlc's split: one part boundary at every 4-byte-aligned magic word of the payload."""
    splits = sum(payload[i:i + 4] == MAGIC_BYTES for i in range(0, len(payload), 4))
    return [0] if not splits else [1] + [2] * (splits - 1) + [3]


def test_mxnet_reads_our_split_records(tmp_path):
    rng = np.random.default_rng(2)
    big = bytearray(rng.integers(0, 256, 100_003, dtype=np.uint8).tobytes())
    for at in (0, 4000, 4001, 99_996):
        big[at : at + 4] = MAGIC_BYTES
    payloads = {
        3: bytes(big),
        1: MAGIC_BYTES * 5,
        8: b"",
        2: pack_record(IRHeader(0, 0.0, 2, 0), [1.0, 2.0], MAGIC_BYTES + b"tail"),
    }
    with RecordWriter(tmp_path / "s.rec", tmp_path / "s.idx") as writer:
        for key, payload in payloads.items():
            writer.write(key, payload)
    cflags = part_cflags(tmp_path / "s.rec")
    assert cflags == [expected_cflags(p) for p in payloads.values()]
    assert cflags[1] == [1, 2, 2, 2, 2, 3] and sum(len(c) > 1 for c in cflags) == 3  # split parts
    by_index = mx_records(mx_read(tmp_path, tmp_path / "s.rec", tmp_path / "s.idx", raw=True))
    assert [r["key"] for r in by_index] == list(payloads)
    assert [r["payload"] for r in by_index] == list(payloads.values())
    (tmp_path / "s.idx").rename(tmp_path / "moved.idx")
    in_order = mx_records(mx_read(tmp_path, tmp_path / "s.rec", raw=True))
    assert [r["payload"] for r in in_order] == list(payloads.values())


@pytest.mark.parametrize("lst, label_width", [("uniform", 1), ("three", 3)])
def test_image_record_iter_iterates_our_rec(images, tmp_path, lst, label_width):
    root, base = images
    entries = read_lst(base / f"{lst}.lst")
    pack(base / f"{lst}.lst", root, tmp_path / "u.rec", tmp_path / "u.idx", PackOptions(encoding=".png"))
    expected = np.stack([np.asarray(Image.open(root / e.path)).transpose(2, 0, 1) for e in entries])
    for idx in (None, tmp_path / "u.idx"):
        data, labels = image_record_iter(tmp_path, tmp_path / "u.rec", idx, label_width)
        assert data.shape == (4, 3, 16, 20) and np.array_equal(data, expected.astype(np.float32))
        assert labels.tolist() == [list(e.labels) for e in entries]


def test_image_record_iter_reads_our_split_records(images, tmp_path):
    """ImageRecordIter's own chunked reader (not MXRecordIO) joins split records: each PNG
    here carries trailing bytes (ignored by decoders) with the magic word at an aligned offset."""
    root, base = images
    entries = read_lst(base / "uniform.lst")
    with RecordWriter(tmp_path / "s.rec", tmp_path / "s.idx") as writer:
        for entry in entries:
            png = (root / entry.path).read_bytes()
            trailer = b"\0" * (-(24 + len(png)) % 4) + MAGIC_BYTES + b"after the magic"
            writer.write(entry.index, pack_record(IRHeader(0, entry.labels[0], entry.index, 0), None, png + trailer))
    assert len(RecordReader(tmp_path / "s.rec")) == 4
    assert part_cflags(tmp_path / "s.rec") == [[1, 3]] * 4  # each record split in two at its magic
    data, labels = image_record_iter(tmp_path, tmp_path / "s.rec", None, 1)
    expected = np.stack([np.asarray(Image.open(root / e.path)).transpose(2, 0, 1) for e in entries])
    assert np.array_equal(data, expected.astype(np.float32))
    assert labels[:, 0].tolist() == [e.labels[0] for e in entries]


def test_we_read_what_im2rec_writes(images, im2rec, tmp_path):
    root, base = images
    entries = read_lst(base / "mixed.lst")
    rec, idx = run_im2rec(
        im2rec,
        tmp_path / "mx",
        base / "mixed.lst",
        root,
        "--pack-label",
        "--resize",
        8,
        "--quality",
        90,
        "--num-thread",
        2,
    )
    theirs = RecordReader(rec)
    assert theirs.idx_path == idx and list(theirs.keys) == [e.index for e in entries]
    assert scan_index(rec) == read_idx(idx)
    seen = mx_records(mx_read(tmp_path, rec, idx, iscolor=1))
    pack(base / "mixed.lst", root, tmp_path / "ours.rec", tmp_path / "ours.idx", PackOptions(resize=8, quality=90))
    for entry, record, mx_record, own in zip(entries, theirs, seen, RecordReader(tmp_path / "ours.rec"), strict=True):
        assert record.header == mx_record["header"] and record.labels.tolist() == list(entry.labels)
        assert record.image == mx_record["payload"][-len(record.image) :]
        pixels = decode_rgb(record.image, "t")
        assert np.abs(pixels.astype(int) - rgb(mx_record["image"])).max() <= 1, entry.path
        assert decode_rgb(own.image, "t").shape == pixels.shape  # same resize and EXIF rule
    # exif6.jpg: stored 10 wide, 24 high; upright 24 x 10; shorter side to 8: 19 x 8
    assert decode_stored(theirs[theirs.keys.index(15)].image, "t").shape == (8, 19, 3)


@pytest.mark.parametrize(
    "lst, flags", [("mixed", ["--pack-label"]), ("uniform", []), ("mixed", ["--pack-label", "--num-thread", 2])]
)
def test_pass_through_rec_and_idx_are_byte_identical_to_im2rec(images, im2rec, tmp_path, lst, flags):
    root, base = images
    rec, idx = run_im2rec(im2rec, tmp_path / "mx", base / f"{lst}.lst", root, "--pass-through", *flags)
    workers = 2 if "--num-thread" in flags else 1
    pack(
        base / f"{lst}.lst", root, tmp_path / "ours.rec", tmp_path / "ours.idx", PackOptions(pass_through=True), workers
    )
    assert (tmp_path / "ours.rec").read_bytes() == rec.read_bytes()
    assert (tmp_path / "ours.idx").read_bytes() == idx.read_bytes()


@pytest.mark.parametrize(
    "flags",
    [
        ["--recursive"],
        ["--recursive", "--train-ratio", 0.5, "--test-ratio", 0.25, "--chunks", 2],
        ["--no-shuffle"],
        ["--recursive", "--exts", ".png"],
    ],
)
def test_make_lst_matches_im2rec_list(images, im2rec, tmp_path, flags):
    root, _ = images
    (tmp_path / "mx").mkdir()
    mxnet(im2rec, "--list", tmp_path / "mx" / "data", root, *flags)
    exts = tuple(flags[flags.index("--exts") + 1 :]) if "--exts" in flags else (".jpeg", ".jpg", ".png")
    ratio = {f: float(flags[flags.index(f) + 1]) for f in ("--train-ratio", "--test-ratio") if f in flags}
    files = write_im2rec_lst_files(  # as make_lst.py: the walk streamed, the lines read back by offset
        tmp_path / "ours" / "data",
        iter_image_folder(root, exts, recursive="--recursive" in flags),
        shuffle="--no-shuffle" not in flags,
        chunks=int(flags[flags.index("--chunks") + 1]) if "--chunks" in flags else 1,
        train_ratio=ratio.get("--train-ratio", 1.0),
        test_ratio=ratio.get("--test-ratio", 0.0),
    )
    theirs = sorted(p.name for p in (tmp_path / "mx").iterdir())
    assert theirs == sorted(p.name for p in files)
    for name in theirs:
        assert (tmp_path / "ours" / name).read_bytes() == (tmp_path / "mx" / name).read_bytes(), name


@pytest.mark.realdata
def test_mxnet_reads_the_real_detection_rec_as_we_do(tmp_path):
    folder = realdata_path("mxnet-recordio") / "detection"
    seen = mx_records(mx_read(tmp_path, folder / "train.rec", folder / "train.idx"))
    ours = RecordReader(folder / "train.rec")
    assert [r["key"] for r in seen] == list(ours.keys)
    for mx_record, record in zip(seen, ours, strict=True):
        assert mx_record["header"] == record.header and record.header.flag == 9
        assert mx_record["labels"] == record.labels.tolist()
        assert mx_record["payload"] == pack_record(record.header, record.labels, record.image)


@pytest.mark.realdata
def test_mxnet_reads_the_real_classification_rec_as_we_do(tmp_path):
    rec = realdata_path("mxnet-recordio") / "classification" / "val.rec"
    seen = mx_records(mx_read(tmp_path, rec, iscolor=0))
    ours = list(RecordReader(rec))
    assert len(seen) == len(ours) == 392
    for mx_record, record in zip(seen, ours, strict=True):
        assert mx_record["header"] == record.header and mx_record["labels"] == record.labels.tolist()
        assert np.abs(decode_gray(record.image, "t").astype(int) - rgb(mx_record["image"])).max() <= 1


@pytest.mark.parametrize(
    "flags, options, tolerance",
    [
        ([], {}, 0),
        (["--resize", 7], {"resize": 7}, 1),
        (["--resize", 9, "--center-crop"], {"resize": 9, "center_crop": True}, 1),
        (["--resize", 30], {"resize": 30}, 1),
        (["--color", 0], {"color": 0}, 1),
        (["--color", 0, "--resize", 7], {"color": 0, "resize": 7}, 2),
        (["--color", -1], {"color": -1}, 0),
    ],
)
def test_pack_gives_im2rec_pixels(images, im2rec, tmp_path, flags, options, tolerance):
    """Same options, lossless PNG output on both sides: the same shapes, and pixels equal up to
    rounding: OpenCV's fixed-point bilinear weights (1 grey level) and, for a colour PNG read
    as grayscale, libpng's RGB-to-gray inside OpenCV against Pillow's (1 more). JPEGs decode
    the same on both sides (libjpeg-turbo; grayscale as luma)."""
    root, base = images
    rec, _ = run_im2rec(im2rec, tmp_path / "mx", base / "mixed.lst", root, "--pack-label", "--encoding", ".png", *flags)
    pack(
        base / "mixed.lst", root, tmp_path / "ours.rec", tmp_path / "ours.idx", PackOptions(encoding=".png", **options)
    )
    entries = read_lst(base / "mixed.lst")
    for entry, theirs, ours in zip(entries, RecordReader(rec), RecordReader(tmp_path / "ours.rec"), strict=True):
        assert theirs.header == ours.header
        a, b = decode_stored(theirs.image, "t"), decode_stored(ours.image, "t")
        assert a.shape == b.shape, entry.path
        assert np.abs(a.astype(int) - b).max() <= (tolerance if entry.path.endswith(".png") else min(tolerance, 1))


def test_pack_of_real_jpegs_at_resize_256_q95_is_within_two_levels_of_im2rec(im2rec, tmp_path):
    """Real ImageNet JPEGs, `--resize 256 --quality 95`, JPEG on both sides: every record
    decodes to the same shape and, per image, mean |ours - im2rec| <= 2 grey levels."""
    root = realdata_path("imagenet-sample")
    write_lst(tmp_path / "real.lst", [LstEntry(i, (float(i % 5),), p.name) for i, p in enumerate(sorted(root.glob("*.JPEG")))])
    rec, _ = run_im2rec(im2rec, tmp_path / "mx", tmp_path / "real.lst", root, "--resize", 256, "--quality", 95)
    pack(tmp_path / "real.lst", root, tmp_path / "ours.rec", tmp_path / "ours.idx", PackOptions(resize=256, quality=95),
         num_workers=2)
    count = 0
    for theirs, ours in zip(RecordReader(rec), RecordReader(tmp_path / "ours.rec"), strict=True):
        a, b = decode_rgb(theirs.image, "theirs"), decode_rgb(ours.image, "ours")
        assert a.shape == b.shape and min(a.shape[:2]) == 256
        assert np.abs(a.astype(int) - b).mean() <= 2, theirs.header.id
        count += 1
    assert count == 100
