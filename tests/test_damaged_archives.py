"""Archives damaged in the middle (not only cut off) are DataErrors naming the archive and the
member, never a silent early end nor a zlib traceback: a tar whose member header is broken (Python's
tarfile ends its listing there without a word), damaged deflate data in a .tar.gz, a zip member or
an MNIST .gz, and Tiny ImageNet's wnids.txt as the params check reads it when the Snakefile loads.
A damaged image member where the layout skips bad images is a counted skip."""
import gzip
import io
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
import zlib

import numpy as np
import pytest
import yaml

from conftest import with_peak_memory
from e2e import ROOT, cli_env, copy_repo, sh
from imgdag.config import semantic_problems
from imgdag.demo.archives import write_tar, write_zip
from imgdag.demo.dog_breed import make_demo_dog_breed
from imgdag.errors import DataError
from imgdag.extract import extract_archive
from imgdag.layouts.mnist_idx import read_idx, write_idx
from imgdag.layouts.tree import TarTree, ZipTree

MEMBERS = [(f"top/f{i}.txt", b"".join(b"line %d of file %d\n" % (k, i) for k in range(300))) for i in range(8)]
NAMES = [name for name, _ in MEMBERS]


def flip(data: bytes, start: int, count: int = 20) -> bytes:
    """`data` with `count` bytes from `start` inverted."""
    return data[:start] + bytes(b ^ 0xFF for b in data[start:start + count]) + data[start + count:]


def member_data_offset(zip_path, name) -> int:
    """Where a zip member's stored data starts."""
    info = zipfile.ZipFile(zip_path).getinfo(name)
    return info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)


def read_tar_both_ways(path) -> list[str]:
    """The tar's file names as the in-place reader lists them; extraction must agree."""
    with TarTree(path) as tree:
        names = tree.names()
    assert extract_archive(path, path.parent / f"{path.name}.out").files == len(names)
    return names


# --- F2: a tar that does not end where its data does ----------------------------------------

@pytest.mark.parametrize("header", [b"\x55" * 512, bytes(512)], ids=["garbage header", "zeroed header"])
def test_a_damaged_member_header_in_the_middle_is_an_error(tmp_path, header):
    """A garbage header (tarfile stops there) or a zeroed one (an end marker with members after it)."""
    write_tar(tmp_path / "good.tar", MEMBERS)
    fifth = tarfile.open(tmp_path / "good.tar").getmembers()[4].offset
    data = (tmp_path / "good.tar").read_bytes()
    (tmp_path / "bad.tar").write_bytes(data[:fifth] + header + data[fifth + 512:])
    expected = (f"damaged or truncated after member 4 ('top/f3.txt'): what follows at byte offset {fifth} "
                if any(header) else  # tar's end marker: what follows it is not tar's
                f"data after the end-of-archive marker (after member 4 ('top/f3.txt')), at byte offset {fifth + 512} ")
    for read in (TarTree, lambda p: extract_archive(p, tmp_path / "out")):
        with pytest.raises(DataError, match=re.escape("bad.tar: " + expected)):
            read(tmp_path / "bad.tar")
    assert not (tmp_path / "out").exists()


def test_damaged_deflate_data_in_a_tar_gz_is_an_error(tmp_path):
    write_tar(tmp_path / "good.tar.gz", MEMBERS, gzipped=True)
    data = (tmp_path / "good.tar.gz").read_bytes()
    (tmp_path / "bad.tar.gz").write_bytes(flip(data, len(data) // 2))
    for read in (TarTree, lambda p: extract_archive(p, tmp_path / "out")):
        with pytest.raises(DataError, match="bad.tar.gz: "):
            read(tmp_path / "bad.tar.gz")
    assert not (tmp_path / "out").exists()


def test_damaged_bzip2_data_in_a_tar_bz2_is_an_error(tmp_path):
    """bzip2 says so with an OSError that has no errno (a full disk's has one: cli.run's message)."""
    rng = np.random.default_rng(0)  # incompressible: several bzip2 blocks, damage after the first
    with tarfile.open(tmp_path / "good.tar.bz2", "w:bz2") as tf:
        for i in range(8):
            data = rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes()
            info = tarfile.TarInfo(f"top/f{i}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    data = (tmp_path / "good.tar.bz2").read_bytes()
    (tmp_path / "bad.tar.bz2").write_bytes(flip(data, len(data) * 3 // 4))
    with pytest.raises(OSError) as raw:  # what tarfile gives
        with tarfile.open(tmp_path / "bad.tar.bz2") as tf:
            tf.extractall(tmp_path / "raw", filter="data")
    assert raw.value.errno is None and "Invalid data stream" in str(raw.value)
    for read in (TarTree, lambda p: extract_archive(p, tmp_path / "out")):
        with pytest.raises(DataError, match="bad.tar.bz2: corrupt or truncated tar"):
            read(tmp_path / "bad.tar.bz2")
    assert not (tmp_path / "out").exists()


def test_a_damaged_tar_stops_the_map_writer_with_one_line(tmp_path):
    """The finding's case: the CNTK map writer read the tar up to the damage and said 'skipped: none'."""
    write_tar(tmp_path / "good.tar", MEMBERS)
    last = tarfile.open(tmp_path / "good.tar").getmembers()[-1].offset
    data = (tmp_path / "good.tar").read_bytes()
    (tmp_path / "bad.tar").write_bytes(data[:last] + b"\x55" * 512 + data[last + 512:])
    done = subprocess.run([sys.executable, str(ROOT / "scripts/write_cntk_maps.py"), "--raw", "bad.tar",
                           "--out", "maps"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "error: bad.tar: damaged or truncated after member 7 ('top/f6.txt')" in done.stderr, done.stderr


def test_complete_tars_are_read_whole(tmp_path):
    """With the end-of-archive blocks and a record's zero padding (Python's and GNU tar's), without
    them (cut right after the last member's data), and gzipped."""
    write_tar(tmp_path / "padded.tar", MEMBERS)
    last = tarfile.open(tmp_path / "padded.tar").getmembers()[-1]
    end = last.offset_data + -(-last.size // 512) * 512
    data = (tmp_path / "padded.tar").read_bytes()
    assert len(data) > end + 1024 and not data[end:].strip(b"\0")  # the marker and padding are there
    (tmp_path / "no_marker.tar").write_bytes(data[:end])
    write_tar(tmp_path / "padded.tar.gz", MEMBERS, gzipped=True)
    for name in ("padded.tar", "no_marker.tar", "padded.tar.gz"):
        assert read_tar_both_ways(tmp_path / name) == NAMES, name


@pytest.mark.parametrize("appended", [b"junk!", "a second tar"])
def test_data_after_the_end_marker_is_named_as_such(tmp_path, appended):
    """tarfile stops at the end marker and ignores what follows (`cat a.tar b.tar`: b's members)."""
    write_tar(tmp_path / "a.tar", MEMBERS)
    data = (tmp_path / "a.tar").read_bytes()
    (tmp_path / "both.tar").write_bytes(data + (data if appended == "a second tar" else appended))
    assert [m.name for m in tarfile.open(tmp_path / "both.tar")] == NAMES  # b's members: not seen
    for read in (TarTree, lambda p: extract_archive(p, tmp_path / "out")):
        with pytest.raises(DataError, match=rf"both.tar: data after the end-of-archive marker \(after member 8 "
                                            rf"\('top/f7.txt'\)\), at byte offset {len(data)} of the tar data"):
            read(tmp_path / "both.tar")


def test_tars_written_by_gnu_tar_are_read_whole(tmp_path):
    if not shutil.which("tar"):
        pytest.skip("no tar command here")
    for name, data in MEMBERS:
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_bytes(data)
    for archive, flags in (("gnu.tar", "-cf"), ("gnu.tar.gz", "-czf")):
        subprocess.run(["tar", flags, str(tmp_path / archive), "-C", str(tmp_path / "src"), "top"], check=True)
        assert read_tar_both_ways(tmp_path / archive) == NAMES, archive


# --- F3: damaged compressed data in a zip member or a .gz -----------------------------------

@pytest.fixture
def damaged_zip(tmp_path):
    """A deflated zip whose member top/f2.txt has damaged data (zipfile raises zlib.error)."""
    write_zip(tmp_path / "good.zip", MEMBERS)
    start = member_data_offset(tmp_path / "good.zip", "top/f2.txt")
    (tmp_path / "bad.zip").write_bytes(flip((tmp_path / "good.zip").read_bytes(), start, 3))
    with pytest.raises(zlib.error):
        zipfile.ZipFile(tmp_path / "bad.zip").read("top/f2.txt")
    return tmp_path / "bad.zip"


def test_a_damaged_zip_member_is_an_error_naming_it(damaged_zip, tmp_path):
    with ZipTree(damaged_zip) as tree, pytest.raises(DataError, match=r"bad.zip:top/f2.txt: unreadable zip member"):
        tree.read_bytes("top/f2.txt")
    with pytest.raises(DataError, match=r"bad.zip: member 'top/f2.txt': cannot be extracted \(Error -3"):
        extract_archive(damaged_zip, tmp_path / "out")


def test_a_damaged_mnist_gz_is_an_error_naming_it(tmp_path):
    write_idx(tmp_path / "images.gz", np.arange(50 * 28 * 28, dtype=np.uint32).reshape(50, 28, 28) % 7)
    damaged = flip((tmp_path / "images.gz").read_bytes(), 20, 3)  # inside the deflate data
    with pytest.raises(zlib.error):
        gzip.decompress(damaged)
    (tmp_path / "images.gz").write_bytes(damaged)
    with pytest.raises(DataError, match=r"images.gz: cannot decompress \(Error -3"):
        read_idx(tmp_path / "images.gz")


def test_a_damaged_dog_image_member_is_a_counted_skip(tmp_path):
    """Dog-breed's train.zip deflated, one JPEG member's data damaged: with bad_images skip (the
    default) the image is skipped, counted and named."""
    raw = make_demo_dog_breed(tmp_path / "dog")
    with zipfile.ZipFile(raw / "train.zip") as zf:
        members = [(name, zf.read(name)) for name in zf.namelist()]
    write_zip(raw / "train.zip", members)
    broken = sorted(name for name, _ in members if name.endswith(".jpg"))[0]
    start = member_data_offset(raw / "train.zip", broken)
    (raw / "train.zip").write_bytes(flip((raw / "train.zip").read_bytes(), start, 3))
    with pytest.raises(zlib.error):
        zipfile.ZipFile(raw / "train.zip").read(broken)
    done = subprocess.run([sys.executable, str(ROOT / "scripts/reorg_dog_breed.py"), "--raw", raw,
                           "--out", tmp_path / "out"], env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipped: 1 train: images that do not decode" in done.stdout + done.stderr, done.stdout
    assert f"train.zip:{broken}: unreadable zip member: Error -3" in done.stderr, done.stderr[-2000:]


# --- F5: wnids.txt as the params check reads it ---------------------------------------------

def tiny_problems(raw) -> list[str]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["tiny_imagenet"]["raw"] = str(raw)
    return semantic_problems(params)


def wnids_zip(path, data: bytes):
    write_zip(path, [("tiny-imagenet-200/wnids.txt", data)])
    return path


KEY = "recipes.tiny_imagenet_resnet18.train.num_classes: cannot be checked"


def test_wnids_that_is_not_utf8_is_a_config_problem_naming_it(tmp_path):
    (tmp_path / "tiny/tiny-imagenet-200").mkdir(parents=True)
    (tmp_path / "tiny/tiny-imagenet-200/wnids.txt").write_bytes(b"n01\nn02\nn0\xe9\n")
    assert tiny_problems(tmp_path / "tiny") == [
        f"{KEY} ({tmp_path}/tiny/tiny-imagenet-200/wnids.txt: line 3: not UTF-8 text "
        "(byte 0xe9 at offset 10; expected UTF-8))"]


def test_a_damaged_wnids_zip_member_is_a_config_problem_naming_it(tmp_path):
    path = wnids_zip(tmp_path / "tiny.zip", b"".join(b"n%08d\n" % i for i in range(200)))
    start = member_data_offset(path, "tiny-imagenet-200/wnids.txt")
    path.write_bytes(flip(path.read_bytes(), start, 3))
    problems = tiny_problems(path)
    assert len(problems) == 1 and problems[0].startswith(
        f"{KEY} ({path}:tiny-imagenet-200/wnids.txt: unreadable zip member: Error -3"), problems


def test_a_wnids_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    path = wnids_zip(tmp_path / "tiny.zip", b"n0\n" * (10 * 2**20))  # 30 MiB from about 30 KB
    problems, peak = with_peak_memory(lambda: tiny_problems(path))
    assert len(problems) == 1 and "member 'tiny-imagenet-200/wnids.txt': expands" in problems[0], problems
    assert "over the 100x ratio cap" in problems[0], problems
    assert peak < 5 * 2**20, peak


@pytest.mark.slow  # parses the Snakefile (seconds)
def test_the_snakefile_names_a_bad_wnids_in_one_short_message(tmp_path):
    ws = copy_repo(tmp_path / "repo")
    (tmp_path / "tiny/tiny-imagenet-200").mkdir(parents=True)
    (tmp_path / "tiny/tiny-imagenet-200/wnids.txt").write_bytes(b"n01\nn0\xe9\n")
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["datasets"]["tiny_imagenet"]["raw"] = str(tmp_path / "tiny")
    (ws / "bad.yaml").write_text(yaml.safe_dump(params))
    done = sh(["snakemake", "-n", "--cores", "1", "mnist_lenet5", "--configfile", "bad.yaml"], ws, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert f"{KEY} ({tmp_path}/tiny/tiny-imagenet-200/wnids.txt: line 2: not UTF-8 text" in out, out
    assert "UnicodeDecodeError" not in out and len(out.strip().splitlines()) <= 10, out
