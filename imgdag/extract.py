"""Safe extraction of raw dataset archives (.tar, .tar.gz, .tgz, .zip).

Every member name is checked before anything is written: absolute names, names with a
`..` component and names that would land outside the output folder through a symlink are
refused. Every archive read (extraction, streaming, and the layout readers' in-place trees)
goes through one `ArchiveCheck`: a total-size cap, a member-count cap and an expansion-ratio
cap (a zip member larger than `max_ratio` times its compressed size, or an archive whose
files total more than `max_ratio` times the archive's own size: a compressed tar's bomb);
sizes under 1 MiB are never refused for their ratio. Two members of one name (a tar can hold
both; the later would silently replace the earlier) and names that are not UTF-8 are refused
too. A refusal is a DataError naming the archive and the member. Tar archives are also
extracted with tarfile's `filter="data"` (no device files, no links leaving the folder, no
setuid bits). A tar must be read to its end (`check_tar_end`): tarfile takes a damaged member
header for the end of the archive without a word. Damaged compressed data (DAMAGED_DATA_ERRORS)
is a DataError too. Output folders are built atomically: a killed run leaves no half-extracted folder.

`write_sha256_listing` lists an extracted folder in `sha256sum` format: a file that changes
exactly when the folder's files do, for rules to depend on instead of the folder;
`extract_archive` writes it before the folder is moved into place, so a listing that fails
leaves no folder behind.
"""
import errno
import gzip
import hashlib
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from imgdag.atomic import atomic_dir, atomic_open
from imgdag.errors import DataError

DEFAULT_MAX_BYTES = 300 * 2**30  # ImageNet's train tar is ~140 GiB
DEFAULT_MAX_MEMBERS = 2_000_000  # ImageNet train: 1.28 M images + 1,000 class tars
DEFAULT_MAX_RATIO = 100  # JPEG archives expand ~1x, text ~4x; deflate bombs ~1000x
RATIO_FREE_BYTES = 2**20  # smaller sizes are never refused for their ratio
_COPY_CHUNK = 1 << 20
# what reading damaged or cut-off compressed data raises, besides the OSError without an errno of
# bad bzip2 data: deflate (gzip, zip), xz, a gzip or zip CRC
DAMAGED_DATA_ERRORS = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile, zipfile.BadZipFile)
# what reading a zip member raises: damaged data, encrypted (RuntimeError), an unknown compression
ZIP_MEMBER_ERRORS = (OSError, RuntimeError, NotImplementedError, *DAMAGED_DATA_ERRORS)


@dataclass
class ExtractSummary:
    """What one extraction wrote."""

    archive: str
    out_dir: str
    files: int = 0
    bytes: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    caps: str = ""  # ArchiveCheck.line()

    def line(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"
        return (f"{self.archive} -> {self.out_dir}: {self.files} files, "
                f"{self.bytes / 2**20:.1f} MiB; skipped: {skipped}; {self.caps}")


def archive_kind(path) -> str:
    """'zip' or 'tar' from the file's content (not its name); DataError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "archive not found (expected a .tar, .tar.gz, .tgz or .zip file)")
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise DataError(path, "not a tar or zip archive")


def check_member_name(archive, name: str) -> str:
    """The member's name as a clean relative posix path; DataError if absolute or with `..`."""
    clean = name.replace("\\", "/")
    if not clean or "\x00" in clean:
        raise DataError(archive, f"member {name!r}: empty name or NUL byte")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise DataError(archive, f"member {name!r}: absolute path refused")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(archive, f"member {name!r}: '..' in path refused (would escape the output)")
    if not parts:
        raise DataError(archive, f"member {name!r}: names no file")
    try:
        clean.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(archive, f"member {ascii(name)}: the name is not UTF-8 (maps and lists are UTF-8 text)") \
            from None
    return "/".join(parts)


@dataclass(frozen=True)
class ArchiveCaps:
    """The limits every archive read goes through (params.yaml `checks`)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS
    max_ratio: float = DEFAULT_MAX_RATIO


class ArchiveCheck:
    """Count an archive's members as they are met; DataError when one passes a cap."""

    def __init__(self, archive, caps: ArchiveCaps = ArchiveCaps()):
        self.archive, self.caps = Path(archive), caps
        self.archive_bytes = max(self.archive.stat().st_size, 1)
        self.members = self.total = 0
        self.worst_ratio = 0.0
        self.names: set[str] = set()  # of the files and links met

    def member(self, name: str, size: int, compressed: int | None = None, folder: bool = False) -> str:
        """Check one member (size: its bytes; compressed: its stored bytes when known; folder:
        it is a directory entry, which may repeat); its clean name."""
        caps, self.members, self.total = self.caps, self.members + 1, self.total + size
        if self.members > caps.max_members:
            raise DataError(self.archive, f"member {name!r}: more than {caps.max_members} members (member-count cap)")
        if self.total > caps.max_bytes:
            raise DataError(self.archive, f"member {name!r}: total size passes the {caps.max_bytes}-byte cap")
        if compressed is not None:
            ratio = size / max(compressed, 1)
            self.worst_ratio = max(self.worst_ratio, ratio)
            if size > RATIO_FREE_BYTES and ratio > caps.max_ratio:
                raise DataError(self.archive, f"member {name!r}: expands {ratio:.0f}x ({compressed} -> {size} bytes), "
                                              f"over the {caps.max_ratio:g}x ratio cap (a zip bomb?)")
        if self.total > RATIO_FREE_BYTES and self.total > caps.max_ratio * self.archive_bytes:
            raise DataError(self.archive, f"member {name!r}: the files total {self.total} bytes, over "
                                          f"{caps.max_ratio:g}x the archive's {self.archive_bytes} (ratio cap)")
        clean = check_member_name(self.archive, name)
        if not folder:
            if clean in self.names:
                raise DataError(self.archive, f"member {name!r}: appears twice (each name must be one file; "
                                              "the later copy would replace the earlier)")
            self.names.add(clean)
        return clean

    def line(self) -> str:
        """The caps and what the archive came to, for a report."""
        return (f"caps: {self.caps.max_bytes / 2**30:g} GiB, {self.caps.max_members} members, "
                f"{self.caps.max_ratio:g}x; expansion {self.total / self.archive_bytes:.1f}x overall"
                + (f", {self.worst_ratio:.1f}x worst member" if self.worst_ratio else ""))


def check_tar_end(tf: tarfile.TarFile, archive) -> None:
    """DataError naming `archive` unless `tf`, iterated to its end, ended where its data does: what
    follows the last member is nothing or zero bytes (the end-of-archive blocks and their padding).
    tarfile ends at a damaged header after the first without a word, dropping what follows, and
    ignores what follows its end marker (a second tar appended). (The seek back to the last header
    block may inflate a compressed tar again from its start.)"""
    tf.fileobj.seek(tf.offset)  # where tarfile stopped: the header block it did not take
    at = tf.offset
    while data := tf.fileobj.read(_COPY_CHUNK):
        if data.count(0) == len(data):
            at += len(data)
            continue
        at += len(data) - len(data.lstrip(b"\0"))  # the first byte that is not zero
        members = tf.getmembers()
        after = f"after member {len(members)} ({members[-1].name!r})" if members else "before its first member"
        if at >= tf.offset + tarfile.BLOCKSIZE:  # tarfile stopped at a zero block: the end marker
            raise DataError(archive, f"data after the end-of-archive marker ({after}), at byte offset {at} of "
                                     "the tar data: a zeroed header, or a second archive appended? (tar stops at the marker)")
        raise DataError(archive, f"damaged or truncated {after}: what follows at byte offset {tf.offset} "
                                 "of the tar data is neither a member header nor the end of the archive")


def _inside(root: Path, target: Path) -> bool:
    root = os.path.realpath(root)
    return os.path.commonpath([root, os.path.realpath(target)]) == root


def _extract_tar(archive: Path, dest: Path, summary, check: ArchiveCheck) -> None:
    def checked_members(tf):
        for member in tqdm(tf, desc=f"extract {archive.name}", unit=" members", leave=False):
            check.member(member.name, member.size if member.isreg() else 0, folder=member.isdir())
            if member.isreg():
                summary.files += 1
                summary.bytes += member.size
            elif not (member.isdir() or member.issym() or member.islnk()):
                summary.skipped["special files (device, fifo)"] += 1
                continue
            yield member

    try:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, members=checked_members(tf), filter="data")
            check_tar_end(tf, archive)
    except tarfile.FilterError as e:
        raise DataError(archive, f"member {e.tarinfo.name!r}: refused ({e})") from e
    except (tarfile.TarError, *DAMAGED_DATA_ERRORS) as e:
        raise DataError(archive, f"corrupt or truncated tar: {e}") from e
    except OSError as e:
        if e.errno is not None:  # the system's (a full disk: cli.run says so), not the data's
            raise
        raise DataError(archive, f"corrupt or truncated tar: {e}") from e  # damaged bzip2 data


def _zip_symlink_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        return zf.read(info).decode("utf-8", "replace")
    return None


def _extract_zip(archive: Path, dest: Path, summary, check: ArchiveCheck) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as e:
        raise DataError(archive, f"corrupt zip: {e}") from e
    with zf:
        infos = zf.infolist()
        for info in infos:
            check.member(info.filename, info.file_size, info.compress_size, folder=info.is_dir())
        for info in tqdm(infos, desc=f"extract {archive.name}", unit=" members", leave=False):
            name = check_member_name(archive, info.filename)
            target = dest / name
            if not _inside(dest, target):
                raise DataError(archive, f"member {info.filename!r}: escapes the output through a symlink")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                link = _zip_symlink_target(zf, info)
                if link is None:
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, _COPY_CHUNK)
            except ZIP_MEMBER_ERRORS as e:
                if getattr(e, "errno", None) == errno.ENOSPC:
                    raise  # the disk's, not the member's: cli.run says so
                raise DataError(archive, f"member {info.filename!r}: cannot be extracted ({e})") from e
            if link is not None:
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
                if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
                    raise DataError(archive, f"member {info.filename!r}: symlink to {link!r} leaves the output")
                os.symlink(link, target)
                continue
            summary.files += 1
            summary.bytes += info.file_size


def extract_archive(archive, out_dir, caps: ArchiveCaps = ArchiveCaps(), listing=None) -> ExtractSummary:
    """Extract a tar or zip archive into out_dir (replaced atomically); refuse unsafe members.
    With `listing`, write the files' SHA-256 listing there too (write_sha256_listing)."""
    archive, out_dir = Path(archive), Path(out_dir)
    kind = archive_kind(archive)
    summary = ExtractSummary(str(archive), str(out_dir))
    check = ArchiveCheck(archive, caps)
    with atomic_dir(out_dir) as tmp:
        if kind == "tar":
            _extract_tar(archive, tmp, summary, check)
        else:
            _extract_zip(archive, tmp, summary, check)
        if listing:
            write_sha256_listing(tmp, listing)
    summary.caps = check.line()
    return summary


def write_sha256_listing(folder, path) -> int:
    """Write `<sha256>  <name>` lines (names relative to `folder`, sorted; `sha256sum -c` checks
    them from inside `folder`) for every file under `folder`. Returns the number of files."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as out:
        for file in tqdm(files, desc=f"sha256 {folder.name}", unit=" files", leave=False):
            name = file.relative_to(folder).as_posix()
            if "\n" in name:
                raise DataError(file, "a newline in the name cannot be listed")
            with open(file, "rb") as f:
                out.write(f"{hashlib.file_digest(f, 'sha256').hexdigest()}  {name}\n")
    return len(files)
