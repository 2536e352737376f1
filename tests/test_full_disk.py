"""A full disk ends a cache writer with one line naming its output: the memory-mapped array
caches reserve their space first, so they never die of SIGBUS (the MNIST cache did, exit 135)
nor leave a worker pool waiting for a dead worker (the Tiny cache hung at 0/2 chunks).

The disk is a real 1 MiB tmpfs (ENOSPC, as a full disk gives; RLIMIT_FSIZE would give EFBIG
and SIGXFSZ instead), so these tests need root and mount(2); elsewhere they are skipped.
"""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from e2e import ROOT, cli_env
from imgdag.atomic import atomic_torch_save
from imgdag.errors import DataError
from imgdag.formats.index_table import write_tiny_index
from imgdag.formats.recordio import IRHeader, pack_record
from imgdag.formats.recordio_writer import RecordWriter
from imgdag.layouts.records import ImageRecord

SIZE = 1 << 20  # the disk; every cache below needs about 2.4 MB


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def cli(cwd, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / args[0]), *args[1:]], cwd=cwd,
                          env=cli_env(), capture_output=True, text=True, timeout=120)


def says_disk_full_once(done, output):
    assert done.returncode == 1, (done.returncode, done.stderr)
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == [f"error: {output}: no space left on the device while writing it; free space, "
                      "then rerun"], done.stderr


def test_full_disk_under_the_rec_array_cache_is_one_line(tmp_path, small_disk):
    with RecordWriter(tmp_path / "a.rec", tmp_path / "a.idx") as rec:
        for i in range(200):
            rec.write(i, pack_record(IRHeader(0, float(i % 10), i, 0), None, png(i)))
    done = cli(tmp_path, "rec_to_array.py", "--rec", "a.rec", "--idx", "a.idx", "--out", "disk/a")
    says_disk_full_once(done, "disk/a.images.npy")
    assert os.listdir(small_disk) == []


def test_full_disk_under_the_workers_of_the_files_cache_is_one_line(tmp_path, small_disk):
    (tmp_path / "raw").mkdir()
    for i in range(200):
        (tmp_path / "raw" / f"{i}.png").write_bytes(png(i))
    write_tiny_index(tmp_path / "index.csv", [ImageRecord(f"{i}.png", i % 10, "n0", {}) for i in range(200)])
    done = cli(tmp_path, "tiny_to_array.py", "--raw", "raw", "--index", "index.csv", "--out", "disk/t",
               "--workers", "2")
    says_disk_full_once(done, "disk/t.images.npy")
    assert os.listdir(small_disk) == []


def test_full_disk_under_torch_save_names_the_output(small_disk):
    """torch's zip writer turns the failed write into a RuntimeError while closing; the writer
    must still say which output found the disk full."""
    import torch

    with pytest.raises(DataError, match="model.pt: no space left on the device"):
        atomic_torch_save({"w": torch.zeros(SIZE)}, small_disk / "model.pt")
    assert os.listdir(small_disk) == []


def test_full_disk_in_a_folder_output_names_the_file_under_its_real_name(tmp_path, small_disk):
    """A file inside a folder written atomically (a temporary folder, renamed when complete) is
    named where it was to be, not in the temporary folder."""
    done = cli(tmp_path, "make_demo.py", "mnist", "disk/demo")
    says_disk_full_once(done, "disk/demo/train-images-idx3-ubyte.gz")
    assert os.listdir(small_disk) == []
