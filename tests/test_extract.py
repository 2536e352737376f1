"""Safe extraction: traversal, absolute names, symlink escapes and caps are refused."""
import hashlib
import io
import random
import shutil
import stat
import subprocess
import tarfile
import zipfile

import pytest

from imgdag.errors import DataError
from imgdag.layouts.tree import open_tree
from imgdag.extract import ArchiveCaps, extract_archive, write_sha256_listing


def make_tar(path, members, mode="w"):
    """members: (name, bytes) for files, (name, '->target') for symlinks."""
    with tarfile.open(path, mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data[2:]
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name)
            if isinstance(data, str):
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                data = data[2:].encode()
            zf.writestr(info, data)
    return path


GOOD = [("top/a.txt", b"alpha"), ("top/sub/b.txt", b"beta" * 10)]


@pytest.mark.parametrize("make, suffix", [(make_tar, ".tar"), (make_zip, ".zip")])
def test_good_archive_extracts(tmp_path, make, suffix):
    archive = make(tmp_path / f"good{suffix}", GOOD)
    summary = extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out/top/a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "out/top/sub/b.txt").read_bytes() == b"beta" * 10
    assert (summary.files, summary.bytes) == (2, 45)
    assert "2 files" in summary.line()


def test_tar_gz_extracts(tmp_path):
    archive = make_tar(tmp_path / "good.tar.gz", GOOD, "w:gz")
    extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out/top/a.txt").read_bytes() == b"alpha"


BAD = {
    "dotdot": ([("ok.txt", b"x"), ("../evil.txt", b"x")], "../evil.txt", "'..'"),
    "nested dotdot": ([("a/../../evil.txt", b"x")], "a/../../evil.txt", "'..'"),
    "absolute": ([("/tmp/evil-abs.txt", b"x")], "/tmp/evil-abs.txt", "absolute"),
    "symlink out": ([("link", "->../outside"), ("link/evil.txt", b"x")], "link", "link"),
    "absolute symlink": ([("link", "->{tmp}/deep"), ("link/evil.txt", b"x")], "link", "link"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("make, suffix", [(make_tar, ".tar"), (make_zip, ".zip")])
def test_unsafe_member_refused(tmp_path, make, suffix, case):
    members, member, reason = BAD[case]
    members = [(name, data.format(tmp=tmp_path) if isinstance(data, str) else data) for name, data in members]
    archive = make(tmp_path / f"bad{suffix}", members)
    out = tmp_path / "deep" / "out"
    with pytest.raises(DataError) as e:
        extract_archive(archive, out)
    message = str(e.value)
    assert str(archive) in message and repr(member) in message and reason in message
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not out.exists() and list((tmp_path / "deep").iterdir()) == []  # no half-extracted folder left


def test_tar_link_inside_is_kept(tmp_path):
    archive = make_tar(tmp_path / "links.tar", [("d/a.txt", b"alpha"), ("d/alias", "->a.txt")])
    extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out/d/alias").read_bytes() == b"alpha"


@pytest.mark.parametrize("make, suffix", [(make_tar, ".tar"), (make_zip, ".zip")])
def test_size_cap(tmp_path, make, suffix):
    archive = make(tmp_path / f"big{suffix}", [("a.bin", b"\0" * 1000), ("b.bin", b"\0" * 1000)])
    with pytest.raises(DataError, match=r"'b.bin'.*1500-byte cap"):
        extract_archive(archive, tmp_path / "out", ArchiveCaps(max_bytes=1500))
    assert not (tmp_path / "out").exists()
    extract_archive(archive, tmp_path / "out", ArchiveCaps(max_bytes=2000))


@pytest.mark.parametrize("make, suffix", [(make_tar, ".tar"), (make_zip, ".zip")])
def test_member_count_cap(tmp_path, make, suffix):
    archive = make(tmp_path / f"many{suffix}", [(f"f{i}", b"x") for i in range(5)])
    with pytest.raises(DataError, match="member-count cap"):
        extract_archive(archive, tmp_path / "out", ArchiveCaps(max_members=4))


def test_not_an_archive(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"this is not an archive" * 40)
    with pytest.raises(DataError, match="not a tar or zip"):
        extract_archive(tmp_path / "x.tar", tmp_path / "out")
    with pytest.raises(DataError, match="not found"):
        extract_archive(tmp_path / "missing.zip", tmp_path / "out")


def test_sha256_listing_changes_with_the_files_and_sha256sum_checks_it(tmp_path):
    extract_archive(make_tar(tmp_path / "good.tar", GOOD), tmp_path / "out")
    assert write_sha256_listing(tmp_path / "out", tmp_path / "sums.txt") == 2
    lines = (tmp_path / "sums.txt").read_text().splitlines()
    assert lines == [f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in GOOD]
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--check", "--quiet", tmp_path / "sums.txt"], cwd=tmp_path / "out", check=True)
    (tmp_path / "out/top/a.txt").write_bytes(b"alphA")  # same name and size, other bytes
    write_sha256_listing(tmp_path / "out", tmp_path / "sums.txt")
    assert (tmp_path / "sums.txt").read_text().splitlines() != lines


def test_zip_ratio_cap_refuses_the_one_bomb_among_ordinary_members(tmp_path):
    """Several members over 1 MiB, one a bomb, the archive as a whole far under the cap:
    the bomb is refused by its own ratio, the ordinary members never are."""
    noise = random.Random(0).randbytes
    ordinary = [("top/a.bin", noise(2 * 2**20)), ("top/b.bin", noise(3 * 2**20))]  # ~1x
    bomb = ("top/zeros.bin", bytes(4 * 2**20))  # deflates ~1000x
    with zipfile.ZipFile(tmp_path / "mixed.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for member in [*ordinary, bomb, ("top/c.bin", noise(2**20 + 1))]:
            zf.writestr(*member)
    with zipfile.ZipFile(tmp_path / "plain.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for member in ordinary:
            zf.writestr(*member)
    assert 9 * 2**20 < 100 * (tmp_path / "mixed.zip").stat().st_size  # overall ~2x
    with pytest.raises(DataError, match=r"member 'top/zeros.bin': expands \d+x .* over the 100x ratio cap"):
        extract_archive(tmp_path / "mixed.zip", tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()
    assert extract_archive(tmp_path / "plain.zip", tmp_path / "plain").files == 2


def test_expansion_ratio_cap_for_zip_and_tar_gz(tmp_path):
    bomb = [("top/zeros.bin", bytes(20 * 2**20))]  # deflates ~1000x
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(*bomb[0])
    make_tar(tmp_path / "bomb.tar.gz", bomb, "w:gz")
    for archive in ("bomb.zip", "bomb.tar.gz"):
        with pytest.raises(DataError, match=r"top/zeros.bin.*over (the 100x|100x the archive).*ratio cap"):
            extract_archive(tmp_path / archive, tmp_path / archive[:-4])
        assert not (tmp_path / archive[:-4]).exists()
        summary = extract_archive(tmp_path / archive, tmp_path / archive[:-4], ArchiveCaps(max_ratio=5000))
        assert "5000x" in summary.line() and summary.bytes == 20 * 2**20
    with pytest.raises(DataError, match="ratio cap"):
        open_tree(tmp_path / "bomb.zip")
