"""MXNet .lst and RecordIO: exact layout, round trips, damaged files, packing, real files, CLIs."""
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, realdata_path, with_peak_memory
from e2e import run_script_here
from PIL import Image

from imgdag.errors import DataError
from imgdag.codec import decode_gray, decode_rgb, decode_stored
from imgdag.formats.lst import (
    LstEntry,
    _inside,
    format_lst_line,
    im2rec_lst_split,
    list_image_folder,
    read_lst,
    write_im2rec_lst_files,
    write_lst,
)
from imgdag.formats.recordio import (
    MAGIC_BYTES,
    IRHeader,
    RecordReader,
    pack_record,
    read_idx,
    scan_index,
    unpack_record,
)
from imgdag.formats.recordio_packer import PackOptions, pack
from imgdag.formats.recordio_writer import RecordWriter, rebuild_index


def frame(cflag, data):
    """One RecordIO part as the spec says: magic, lrec, data, zero padding to 4."""
    return MAGIC_BYTES + struct.pack("<I", cflag << 29 | len(data)) + data + b"\0" * (-len(data) % 4)


def save(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.squeeze()).save(path)
    return pixels


@pytest.fixture
def image_folder(tmp_path):
    """cat/ and dog/ PNGs (one grayscale), and the .lst naming them with one and two labels."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    pixels = {
        "cat/a.png": save(root / "cat/a.png", rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)),
        "cat/b.png": save(root / "cat/b.png", rng.integers(0, 256, (16, 8, 3), dtype=np.uint8)),
        "dog/c.png": save(root / "dog/c.png", rng.integers(0, 256, (9, 9, 1), dtype=np.uint8)),
    }
    entries = [
        LstEntry(7, (0.0,), "cat/a.png"),
        LstEntry(3, (0.0, 0.25, 0.5), "cat/b.png"),
        LstEntry(11, (1.0,), "dog/c.png"),
    ]
    write_lst(tmp_path / "images.lst", entries)
    return root, tmp_path / "images.lst", entries, pixels


# .lst


def test_write_lst_writes_im2rec_lines_and_reads_back(tmp_path):
    entries = [LstEntry(0, (3.0,), "a/x.jpg"), LstEntry(12, (1.0, 0.5, -2.25), "b c/y.png")]
    write_lst(tmp_path / "l.lst", entries)
    assert (tmp_path / "l.lst").read_text() == "0\t3.000000\ta/x.jpg\n12\t1.000000\t0.500000\t-2.250000\tb c/y.png\n"
    assert read_lst(tmp_path / "l.lst") == entries


def test_read_lst_strips_spaces_around_fields_and_skips_blank_lines(tmp_path):
    (tmp_path / "l.lst").write_text("0 \t 3 \t 0-0.jpeg\n\n1\t2\t7\tb.jpg\n2\t 3 \t c.jpg \t\n3\t3\t d.jpg \n")
    assert read_lst(tmp_path / "l.lst") == [LstEntry(0, (3.0,), "0-0.jpeg"), LstEntry(1, (2.0, 7.0), "b.jpg"),
                                            LstEntry(2, (3.0,), "c.jpg"), LstEntry(3, (3.0,), "d.jpg")]


@pytest.mark.parametrize("bad", ["1\t1\t../x.jpg", "1\t1\t/etc/passwd", "1\t1\t.", "-1\t1\tb.jpg"])
def test_a_line_whose_label_was_met_before_is_checked_as_the_first(tmp_path, bad):
    (tmp_path / "l.lst").write_text(f"0\t1\tok.jpg\n{bad}\n")
    with pytest.raises(DataError, match=r"l\.lst: line 2: (path|index)"):
        read_lst(tmp_path / "l.lst", tmp_path)


# line 1's label met again ("1"): such a line is read on a shorter way, with the same checks
@pytest.mark.parametrize("bad", ["0\ta.jpg", "x\t1\ta.jpg", "0\tone\ta.jpg", "1.5\t1\ta.jpg", "0\t1\t ", "0\t1\t\t"])
def test_read_lst_names_file_and_line_of_a_malformed_line(tmp_path, bad):
    (tmp_path / "l.lst").write_text(f"0\t1\tok.jpg\n{bad}\n")
    with pytest.raises(DataError, match=r"l\.lst: line 2: expected"):
        read_lst(tmp_path / "l.lst")


def test_list_image_folder_labels_folders_in_sorted_walk_order(tmp_path):
    for name in ["b/2.jpg", "b/1.JPEG", "a/z.png", "a/notes.txt", "a/deep/q.jpg", "top.jpg"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    assert list_image_folder(tmp_path, recursive=True) == [
        LstEntry(0, (0.0,), "top.jpg"),
        LstEntry(1, (1.0,), "a/z.png"),
        LstEntry(2, (2.0,), "a/deep/q.jpg"),
        LstEntry(3, (3.0,), "b/1.JPEG"),
        LstEntry(4, (3.0,), "b/2.jpg"),
    ]
    assert list_image_folder(tmp_path) == [LstEntry(0, (0.0,), "top.jpg")]
    assert [e.path for e in list_image_folder(tmp_path / "a", exts=(".txt",))] == ["notes.txt"]


def test_im2rec_lst_split_shuffles_with_seed_100_and_splits(tmp_path):
    expected = list(range(10))
    random.seed(100)
    random.shuffle(expected)
    assert {k: list(v) for k, v in im2rec_lst_split(tmp_path / "p", 10).items()} == {tmp_path / "p.lst": expected}
    files = {k: list(v) for k, v in im2rec_lst_split("p", 10, shuffle=False, train_ratio=0.6, test_ratio=0.2).items()}
    assert files == {Path("p_test.lst"): [0, 1], Path("p_val.lst"): [8, 9], Path("p_train.lst"): [2, 3, 4, 5, 6, 7]}
    chunks = im2rec_lst_split("p", 10, shuffle=False, chunks=3)
    assert [len(v) for v in chunks.values()] == [4, 4, 2]
    assert [str(k) for k in chunks] == ["p_0.lst", "p_1.lst", "p_2.lst"]


@pytest.mark.parametrize("options", [{}, {"shuffle": False}, {"chunks": 3}, {"train_ratio": 0.6, "test_ratio": 0.2},
                                     {"chunks": 2, "train_ratio": 0.5}])
def test_written_lst_files_hold_the_split_entries_lines(tmp_path, options):
    """write_im2rec_lst_files (entries waiting on disk, read back by offset) writes each file's
    entries (im2rec_lst_split's positions in the listing) as write_lst would: multi-label and
    non-ASCII lines, every split."""
    entries = [LstEntry(i, (float(i % 3),) if i % 4 else (1.0, 0.25, 2.5), f"c{i % 3}/é {i}.jpg") for i in range(23)]
    written = write_im2rec_lst_files(tmp_path / "p", iter(entries), **options)
    split = im2rec_lst_split(tmp_path / "p", len(entries), **options)
    assert list(written) == list(split)
    for path, positions in split.items():
        lines = "".join(format_lst_line(entries[i]) for i in positions)
        assert written[path] == len(positions) and path.read_bytes() == lines.encode("utf-8"), path.name
    assert sorted(tmp_path.iterdir()) == sorted(split)  # no spool left


def test_listing_memory_does_not_grow_with_the_listing(tmp_path):
    """The listing holds offsets and positions, 24 bytes an entry, not the entries: peak Python
    memory grows by under 40 bytes an entry from 2,000 to 8,000 (holding and shuffling the
    entries took 255 here)."""
    def peak(count: int) -> int:
        entries = (LstEntry(i, (float(i % 7),), f"class{i % 7}/n{i:08d}.JPEG") for i in range(count))
        written, peak = with_peak_memory(lambda: write_im2rec_lst_files(tmp_path / "p", entries))
        assert sum(written.values()) == count
        return peak

    peak(100)  # first-call allocations out of the way
    small, large = peak(2000), peak(8000)
    assert (large - small) / 6000 < 40, f"peak {small} -> {large} bytes"

# record payloads and framing


def test_pack_record_single_and_multi_label_layout():
    single = pack_record(IRHeader(0, 4.0, 2574, 0), None, b"IMG")
    assert single == struct.pack("<IfQQ", 0, 4.0, 2574, 0) + b"IMG"
    multi = pack_record(IRHeader(0, 9.0, 5, 1), [1.5, 2.0, -3.0], b"IMG")
    assert multi == struct.pack("<IfQQ3f", 3, 0.0, 5, 1, 1.5, 2.0, -3.0) + b"IMG"
    record = unpack_record(multi)
    assert record.header == IRHeader(3, 0.0, 5, 1) and record.image == b"IMG"
    assert record.labels.dtype == np.float32 and record.labels.tolist() == [1.5, 2.0, -3.0]
    assert unpack_record(single).labels.tolist() == [4.0]
    with pytest.raises(ValueError, match="shorter than its 3 labels"):
        unpack_record(multi[:30])


def write_records(tmp_path, payloads, idx=True):
    rec, idx_path = tmp_path / "r.rec", (tmp_path / "r.idx" if idx else None)
    with RecordWriter(rec, idx_path) as writer:
        for key, payload in payloads.items():
            writer.write(key, payload)
    return rec, idx_path


def test_writer_frames_pads_and_indexes_records(tmp_path):
    payloads = {
        10: pack_record(IRHeader(0, 1.0, 10, 0), None, b"abc"),
        4: pack_record(IRHeader(0, 2.0, 4, 0), None, b""),
    }
    rec, idx = write_records(tmp_path, payloads)
    assert rec.read_bytes() == frame(0, payloads[10]) + frame(0, payloads[4])
    assert idx.read_text() == f"10\t0\n4\t{len(frame(0, payloads[10]))}\n"
    reader = RecordReader(rec)
    assert reader.idx_path == idx and list(reader.keys) == [10, 4] and len(reader) == 2
    assert reader[1].header.id == 4 and reader[reader.keys.index(10)].image == b"abc"
    assert [r.labels.tolist() for r in reader] == [[1.0], [2.0]]


def test_writer_splits_records_at_aligned_magic_words_as_dmlc(tmp_path):
    header = pack_record(IRHeader(0, 1.0, 1, 0), None, b"")  # 24 bytes, so the image starts aligned
    image = b"abcd" + MAGIC_BYTES + b"efgh" + MAGIC_BYTES + MAGIC_BYTES + b"x" + MAGIC_BYTES + b"yz"
    payload = header + image
    header2 = pack_record(IRHeader(0, 2.0, 2, 0), None, b"")
    rec, idx = write_records(tmp_path, {1: payload, 2: header2 + MAGIC_BYTES})
    first = (
        frame(1, header + b"abcd")
        + frame(2, b"efgh")
        + frame(2, b"")
        + frame(3, b"x" + MAGIC_BYTES + b"yz")  # this magic is at offset 45, not aligned: kept
    )
    assert rec.read_bytes() == first + frame(1, header2) + frame(3, b"")
    assert idx.read_text() == f"1\t0\n2\t{len(first)}\n"
    reader = RecordReader(rec, idx)
    assert reader[0].image == image and reader[1].image == MAGIC_BYTES
    assert [r.header.id for r in reader] == [1, 2]


def test_pass_through_copy_splits_at_aligned_magic_words_as_write_does(tmp_path):
    """A copied image file (RecordWriter.write_from_file, one reused buffer) is framed as
    `write` frames the same payload in memory, over records of growing and shrinking size."""
    images = {"m.jpg": b"abcd" + MAGIC_BYTES + b"efg" + MAGIC_BYTES + b"h" + MAGIC_BYTES, "big.jpg": b"z" * 999,
              "small.jpg": MAGIC_BYTES + b"y"}
    for name, data in images.items():
        (tmp_path / name).write_bytes(data)
    entries = [LstEntry(3, (1.0,), "m.jpg"), LstEntry(4, (1.0, 2.0), "m.jpg"), LstEntry(5, (0.0,), "big.jpg"),
               LstEntry(6, (0.0,), "small.jpg")]
    write_lst(tmp_path / "m.lst", entries)
    checked = PackOptions(pass_through=True, images_checked=True)
    pack(tmp_path / "m.lst", tmp_path, tmp_path / "c.rec", tmp_path / "c.idx", checked)
    heads = {3: pack_record(IRHeader(0, 1.0, 3, 0), None, b""), 4: pack_record(IRHeader(0, 0, 4, 0), [1, 2], b""),
             5: pack_record(IRHeader(0, 0.0, 5, 0), None, b""), 6: pack_record(IRHeader(0, 0.0, 6, 0), None, b"")}
    rec, idx = write_records(tmp_path, {e.index: heads[e.index] + images[e.path] for e in entries})
    assert (tmp_path / "c.rec").read_bytes() == rec.read_bytes()
    assert (tmp_path / "c.idx").read_text() == idx.read_text()
    assert [r.image for r in RecordReader(tmp_path / "c.rec")] == [images[e.path] for e in entries]


def test_bad_magic_is_a_data_error_naming_file_and_offset(tmp_path):
    payloads = {i: pack_record(IRHeader(0, 0.0, i, 0), None, b"12345678") for i in range(3)}
    rec, idx = write_records(tmp_path, payloads)
    data = bytearray(rec.read_bytes())
    second = read_idx(idx)[1][1]
    data[second] ^= 0xFF
    rec.write_bytes(bytes(data))
    reader = RecordReader(rec, idx)
    assert reader[0].header.id == 0
    with pytest.raises(
        DataError, match=rf"r\.rec: bad magic 0x[0-9a-f]{{8}} at byte offset {second}, expected 0xced7230a"
    ):
        reader[1]
    with pytest.raises(DataError, match=f"bad magic .* at byte offset {second}"):
        list(reader)
    idx.unlink()
    with pytest.raises(DataError, match=f"bad magic .* at byte offset {second}"):
        RecordReader(rec)  # no .idx: the scan meets it


@pytest.mark.parametrize("cut", [3, 20, 36])
def test_truncated_file_is_a_data_error_naming_file_and_offset(tmp_path, cut):
    payloads = {i: pack_record(IRHeader(0, 0.0, i, 0), None, b"x" * 13) for i in range(2)}
    rec, idx = write_records(tmp_path, payloads)
    size = len(frame(0, payloads[0]))
    rec.write_bytes(rec.read_bytes()[: size + cut])
    with pytest.raises(DataError, match=rf"r\.rec: truncated: .* byte offset {size}"):
        list(RecordReader(rec, idx))
    with pytest.raises(DataError, match="truncated"):
        RecordReader(rec, idx)[1]


def test_reader_scans_without_idx_and_rebuild_index_equals_the_written_one(tmp_path):
    payloads = {k: pack_record(IRHeader(0, float(k), k, 0), None, bytes(k)) for k in [5, 2, 9, 0]}
    payloads[7] = pack_record(IRHeader(0, 1.0, 7, 0), [1, 2], MAGIC_BYTES * 3)  # split record
    rec, idx = write_records(tmp_path, payloads)
    written = idx.read_text()
    idx.unlink()
    scanned = RecordReader(rec)
    assert scanned.idx_path is None and list(scanned.keys) == [5, 2, 9, 0, 7]
    assert scanned[scanned.keys.index(7)].image == MAGIC_BYTES * 3
    assert rebuild_index(rec, tmp_path / "rebuilt.idx") == 5
    assert (tmp_path / "rebuilt.idx").read_text() == written


def test_malformed_idx_line_is_a_data_error(tmp_path):
    rec, idx = write_records(tmp_path, {0: pack_record(IRHeader(0, 0.0, 0, 0), None, b"")})
    idx.write_text("0\t0\nzero\n")
    with pytest.raises(DataError, match=r"r\.idx: line 2: expected key<TAB>offset"):
        RecordReader(rec)


@pytest.mark.parametrize("key", [-1, 2**64])
def test_an_idx_key_that_is_no_record_id_is_a_data_error(tmp_path, key):
    rec, idx = write_records(tmp_path, {0: pack_record(IRHeader(0, 0.0, 0, 0), None, b"")})
    idx.write_text(f"{key}\t0\n")
    with pytest.raises(DataError, match=rf"r\.idx: key {key} is outside 0\.\.2\*\*64-1"):
        RecordReader(rec)


def test_writer_leaves_no_output_when_the_block_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with RecordWriter(tmp_path / "r.rec", tmp_path / "r.idx") as writer:
            writer.write(0, b"x" * 30)
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


# images and pack


def test_decode_image_keeps_or_converts_channels(tmp_path):
    pixels = save(tmp_path / "g.png", np.arange(12, dtype=np.uint8).reshape(3, 4, 1))
    data = (tmp_path / "g.png").read_bytes()
    assert np.array_equal(decode_stored(data, "t"), pixels)
    assert decode_rgb(data, "t").shape == (3, 4, 3)
    with pytest.raises(DataError, match="t: not a decodable image"):
        decode_stored(b"not an image", "t")


def test_exif_orientation_is_applied_as_opencv_does_except_as_stored(tmp_path):
    image = Image.fromarray(np.zeros((6, 10, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # display rotated a quarter turn clockwise
    image.save(tmp_path / "e.jpg", exif=exif)
    data = (tmp_path / "e.jpg").read_bytes()
    assert decode_stored(data, "t").shape == (6, 10, 3) and decode_gray(data, "t").shape == (10, 6, 1)
    write_lst(tmp_path / "e.lst", [LstEntry(0, (0.0,), "e.jpg")])
    for color, shape in [(1, (10, 6, 3)), (0, (10, 6, 1)), (-1, (6, 10, 3))]:
        pack(tmp_path / "e.lst", tmp_path, tmp_path / "e.rec", tmp_path / "e.idx", PackOptions(color=color))
        assert decode_stored(RecordReader(tmp_path / "e.rec")[0].image, "t").shape == shape


def test_pack_png_round_trips_ids_labels_and_pixels(image_folder, tmp_path):
    root, lst, entries, pixels = image_folder
    summary = pack(lst, root, tmp_path / "out.rec", tmp_path / "out.idx", PackOptions(encoding=".png", color=-1))
    assert (summary.written, summary.skipped) == (3, {})
    reader = RecordReader(tmp_path / "out.rec")
    assert list(reader.keys) == [7, 3, 11] and [r.header.id for r in reader] == [7, 3, 11]
    assert [r.header.flag for r in reader] == [0, 3, 0]
    for entry, record in zip(entries, reader, strict=True):
        assert record.labels.tolist() == list(entry.labels)
        assert np.array_equal(decode_stored(record.image, "t"), pixels[entry.path])
    color = pack(lst, root, tmp_path / "c.rec", tmp_path / "c.idx", PackOptions(encoding=".png"))
    assert color.written == 3
    assert decode_stored(RecordReader(tmp_path / "c.rec")[2].image, "t").shape == (9, 9, 3)


def test_pack_pass_through_copies_image_bytes(image_folder, tmp_path):
    root, lst, entries, _ = image_folder
    pack(lst, root, tmp_path / "p.rec", tmp_path / "p.idx", PackOptions(pass_through=True))
    for entry, record in zip(entries, RecordReader(tmp_path / "p.rec"), strict=True):
        assert record.image == (root / entry.path).read_bytes()


def test_pack_pass_through_writes_im2rec_bytes_without_mxnet(image_folder, tmp_path):
    """The whole `.rec` and `.idx`, byte for byte, as the module docstring (and im2rec.py
    --pass-through --pack-label) lays them out: one unsplit part per `.lst` entry whose IRHeader
    is (flag, label, id = the .lst index, id2 = 0), then the labels, then the file's bytes."""
    root, lst, entries, _ = image_folder
    pack(lst, root, tmp_path / "p.rec", tmp_path / "p.idx", PackOptions(pass_through=True))
    expected, index = b"", ""
    for entry in entries:
        index += f"{entry.index}\t{len(expected)}\n"
        labels = entry.labels
        head = (struct.pack("<IfQQ", 0, labels[0], entry.index, 0) if len(labels) == 1 else
                struct.pack(f"<IfQQ{len(labels)}f", len(labels), 0.0, entry.index, 0, *labels))
        expected += frame(0, head + (root / entry.path).read_bytes())
    assert (tmp_path / "p.rec").read_bytes() == expected
    assert (tmp_path / "p.idx").read_text() == index


def test_pack_with_workers_writes_the_same_bytes_in_lst_order(image_folder, tmp_path):
    root, lst, _, _ = image_folder
    pack(lst, root, tmp_path / "one.rec", tmp_path / "one.idx", PackOptions(quality=80))
    pack(lst, root, tmp_path / "two.rec", tmp_path / "two.idx", PackOptions(quality=80), num_workers=2)
    assert (tmp_path / "one.rec").read_bytes() == (tmp_path / "two.rec").read_bytes()
    assert (tmp_path / "one.idx").read_text() == (tmp_path / "two.idx").read_text()


def test_pack_center_crop_resize_and_grayscale_follow_im2rec(image_folder, tmp_path):
    root, lst, _, _ = image_folder
    pack(lst, root, tmp_path / "r.rec", tmp_path / "r.idx", PackOptions(resize=7))
    # shorter side to 7, the other scaled with integer division: (10,14) -> (7,9), (16,8) -> (14,7)
    assert [decode_stored(r.image, "t").shape for r in RecordReader(tmp_path / "r.rec")] == [(7, 9, 3), (14, 7, 3), (7, 7, 3)]
    pack(lst, root, tmp_path / "c.rec", tmp_path / "c.idx", PackOptions(resize=5, center_crop=True, color=0))
    assert [decode_stored(r.image, "t").shape for r in RecordReader(tmp_path / "c.rec")] == [(5, 5, 1)] * 3


@pytest.mark.parametrize("pass_through, workers", [(False, 1), (True, 1), (True, 2)])
def test_pack_counts_and_names_skipped_images(image_folder, tmp_path, pass_through, workers):
    root, _, _, _ = image_folder
    good = (root / "cat/a.png").read_bytes()
    (root / "cut.png").write_bytes(good[: len(good) // 2])
    (root / "text.jpg").write_text("not an image")
    entries = [
        LstEntry(0, (0.0,), "cat/a.png"),
        LstEntry(1, (0.0,), "cut.png"),
        LstEntry(2, (0.0,), "gone.jpg"),
        LstEntry(3, (1.0,), "text.jpg"),
    ]
    write_lst(tmp_path / "bad.lst", entries)
    options = PackOptions(pass_through=pass_through)
    with pytest.warns(UserWarning, match=r"skipped 3 images:\n .*cut\.png \(corrupt: not a decodable image.*\n"
                                         r" .*gone\.jpg \(missing: no such image file\)"):
        summary = pack(tmp_path / "bad.lst", root, tmp_path / "b.rec", tmp_path / "b.idx", options, workers)
    assert (summary.written, summary.skipped) == (1, {"corrupt": 2, "missing": 1})
    assert str(summary).endswith(
        "packed 1 of 4 images into " + str(tmp_path / "b.rec") + "; skipped 2 corrupt, 1 missing"
    )
    assert list(RecordReader(tmp_path / "b.rec").keys) == [0]
    with pytest.raises(DataError, match=r"cut\.png: not a decodable image"):
        pack(tmp_path / "bad.lst", root, tmp_path / "e.rec", tmp_path / "e.idx", options, workers, "error")
    assert not (tmp_path / "e.rec").exists()


def test_pack_copies_checked_images_without_decoding_them(image_folder, tmp_path):
    """images_checked: the listing step checked them, so pass-through only copies (a missing
    file is still a counted skip); without it the same corrupt file is skipped."""
    root, _, _, _ = image_folder
    (root / "text.jpg").write_text("not an image")
    write_lst(tmp_path / "l.lst", [LstEntry(0, (0.0,), "text.jpg"), LstEntry(1, (0.0,), "gone.jpg")])
    checked = PackOptions(pass_through=True, images_checked=True)
    with pytest.warns(UserWarning, match=r"gone\.jpg \(missing"):
        summary = pack(tmp_path / "l.lst", root, tmp_path / "c.rec", tmp_path / "c.idx", checked, 2)
    assert (summary.written, summary.skipped) == (1, {"missing": 1})
    assert RecordReader(tmp_path / "c.rec")[0].image == b"not an image"
    with pytest.warns(UserWarning, match=r"text\.jpg \(corrupt"):
        summary = pack(tmp_path / "l.lst", root, tmp_path / "u.rec", tmp_path / "u.idx", PackOptions(pass_through=True))
    assert summary.written == 0


def test_pack_options_reject_what_im2rec_rejects():
    with pytest.raises(ValueError, match="encoding"):
        PackOptions(encoding=".bmp")
    with pytest.raises(ValueError, match="color"):
        PackOptions(color=3)


# real files written by MXNet's im2rec


@pytest.mark.realdata
@pytest.mark.parametrize("name, count", [("train", 1380), ("val", 392)])
def test_real_classification_rec_without_idx_is_scanned(name, count):
    rec = realdata_path("mxnet-recordio") / "classification" / f"{name}.rec"
    reader = RecordReader(rec)
    assert reader.idx_path is None and len(reader) == count
    assert list(reader.keys) == list(range(1, count + 1))  # ids 1..N, not the .lst beside it
    records = list(reader)
    assert [r.header.id for r in records] == list(reader.keys)
    assert all(r.header.flag == 0 and r.labels[0] == int(r.labels[0]) for r in records)
    assert decode_stored(records[0].image, "t").shape == (28, 28, 1)
    assert reader[count - 1].header.id == count


@pytest.mark.realdata
def test_real_detection_rec_has_multi_label_headers_matching_its_idx_and_lst():
    folder = realdata_path("mxnet-recordio") / "detection"
    reader = RecordReader(folder / "train.rec")
    entries = read_lst(folder / "train.lst")
    assert reader.idx_path == folder / "train.idx"
    assert list(reader.keys) == [e.index for e in entries] == list(range(12))
    for entry, record in zip(entries, reader, strict=True):
        assert record.header.flag == 9 and record.header.label == 0.0
        assert record.labels.tolist() == np.float32(entry.labels).tolist()
        assert record.image[:2] == b"\xff\xd8"  # pass-through JPEG
    assert decode_stored(reader[0].image, "t").shape[2] == 3
    assert [r.header.id for r in reader] == list(reader.keys)
    assert (
        scan_index(folder / "train.rec")
        == read_idx(folder / "train.idx")
        == list(zip(reader.keys, reader.offsets, strict=True))
    )


# command lines


def run_script(name, *args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *map(str, args)], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize("name", ["make_lst.py", "make_rec.py"])
def test_cli_help(name, tmp_path):
    result = run_script(name, "--help", cwd=tmp_path)
    assert result.returncode == 0 and "usage:" in result.stdout


def test_cli_make_lst_then_make_rec(image_folder, tmp_path):
    root = image_folder[0]
    result = run_script("make_lst.py", tmp_path / "data", root, "--recursive", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "listed 3 images in 2 classes" in result.stdout
    assert sorted(e.labels for e in read_lst(tmp_path / "data.lst")) == [(0.0,), (0.0,), (1.0,)]

    result = run_script("make_rec.py", tmp_path / "data.lst", root, "--resize", "4", "--num-workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"packed 3 of 3 images into {tmp_path / 'data.rec'}" in result.stdout
    assert sorted(RecordReader(tmp_path / "data.rec").keys) == [0, 1, 2]


@pytest.mark.parametrize("recursive", [True, False])
def test_make_lst_counts_the_files_it_passes_over(tmp_path, recursive):
    """im2rec --list's rule (regular files with a suffix of --exts), but what it leaves out is said."""
    root = tmp_path / "root"
    (root / "cat").mkdir(parents=True)
    for name in ("cat/a.jpg", "b.JPEG", "c.gif", "d.gif", "notes"):
        (root / name).write_bytes(b"x")
    os.mkfifo(root / "f.png")
    result = run_script("make_lst.py", tmp_path / "data", root, *(["--recursive"] if recursive else []), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = "2 images in 2 classes" if recursive else "1 images in 1 classes"
    assert (f"listed {listed} under {root}; passed over: 2 files named *.gif; 1 files without a suffix; 1 special files named like images "
            "(--exts .jpeg .jpg .png)") in result.stdout


def test_cli_pass_through_of_checked_images_loads_no_image_codec(image_folder, tmp_path):
    """Copying checked images decodes nothing, so make_rec.py loads no codec library (OpenCV
    alone took 0.15-0.5 s of its start-up)."""
    root, lst, _, _ = image_folder
    code = ("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
            "print('loaded:', sorted({'cv2', 'simplejpeg', 'PIL'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code, str(ROOT / "scripts" / "make_rec.py"), str(lst), str(root),
                             "--rec", str(tmp_path / "c.rec"), "--pass-through", "--images-checked"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "packed 3 of 3 images" in result.stdout and "loaded: []" in result.stdout


def test_cli_rebuild_index(image_folder, tmp_path, monkeypatch, capsys):
    root, lst, _, _ = image_folder
    pack(lst, root, tmp_path / "p.rec", tmp_path / "p.idx")
    assert (
        run_script_here(monkeypatch, "make_rec.py", "--rebuild-index", tmp_path / "p.rec", "--idx", tmp_path / "re.idx")
        == 0
    )
    assert capsys.readouterr().out == f"indexed 3 records of {tmp_path / 'p.rec'} in {tmp_path / 're.idx'}\n"
    assert (tmp_path / "re.idx").read_text() == (tmp_path / "p.idx").read_text()
    assert run_script_here(monkeypatch, "make_rec.py", "--rebuild-index", tmp_path / "p.rec", lst) == 2
    assert "--rebuild-index takes no LST or ROOT" in capsys.readouterr().err


def test_cli_bad_lst_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "bad.lst").write_text("0\tonly-two\n")
    assert run_script_here(monkeypatch, "make_rec.py", tmp_path / "bad.lst", tmp_path) == 1
    expected = f"error: {tmp_path / 'bad.lst'}: line 1: expected index<TAB>label(s)<TAB>path, got '0\\tonly-two'"
    assert capsys.readouterr().err.strip() == expected


@pytest.mark.parametrize("path, inside", [
    ("a.jpg", True), ("cls/a.jpg", True), ("./a", True), ("a/./b", True), ("a//b", True), ("a/.", True),
    ("a/../b", True), ("ROOT/a", True), ("", False), (".", False), ("./", False), ("a/..", False), ("..", False),
    ("../a", False), ("a/../../b", False), ("/etc/passwd", False), ("ROOT", False), ("ROOT/../x", False),
])
def test_a_lst_path_is_inside_the_image_root_by_its_spelling(tmp_path, path, inside):
    root = str(tmp_path)
    assert _inside(root, path.replace("ROOT", root)) is inside


@pytest.mark.parametrize("options, workers", [(PackOptions(pass_through=True, images_checked=True), 1),
                                              (PackOptions(pass_through=True), 2)])
def test_packing_memory_does_not_grow_with_the_list(tmp_path, options, workers):
    """The packer holds no entry per image (it read the whole .lst into a list before: about
    200 bytes an entry): the main process's peak Python memory grows by under 40 bytes an
    entry from 2,000 to 8,000 entries (the index array of the duplicate check takes 8)."""
    save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))

    def peak(entries: int) -> int:
        write_lst(tmp_path / "l.lst", (LstEntry(i, (float(i % 7),), "a.png") for i in range(entries)))
        packed, peak = with_peak_memory(lambda: pack(tmp_path / "l.lst", tmp_path, tmp_path / "o.rec",
                                                     tmp_path / "o.idx", options, num_workers=workers))
        assert packed.written == entries
        return peak

    peak(100)  # first-call allocations (imports, caches) out of the way
    small, large = peak(2000), peak(8000)
    assert (large - small) / 6000 < 40, f"peak {small} -> {large} bytes"


def test_a_lst_that_changes_between_its_check_and_packing_leaves_no_rec(tmp_path, monkeypatch):
    """The .lst is read twice (checked whole, then packed as read): one that grew in between
    (a duplicate index now possible) is a DataError, and no .rec is left."""
    import imgdag.formats.recordio_packer as packer

    save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    write_lst(tmp_path / "l.lst", [LstEntry(0, (1.0,), "a.png"), LstEntry(1, (1.0,), "a.png")])
    check = packer._check_lst

    def check_then_grow(lst_path, image_root):
        count = check(lst_path, image_root)
        with open(lst_path, "a") as f:
            f.write("0\t1.000000\ta.png\n")
        return count

    monkeypatch.setattr(packer, "_check_lst", check_then_grow)
    with pytest.raises(DataError, match=r"l\.lst: changed while packing: 2 entries when checked, 3 when packed"):
        pack(tmp_path / "l.lst", tmp_path, tmp_path / "o.rec", tmp_path / "o.idx", PackOptions(pass_through=True))
    assert not (tmp_path / "o.rec").exists() and not (tmp_path / "o.idx").exists()
