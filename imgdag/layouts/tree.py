"""A read-only view of a dataset root that is a directory, a .zip or a .tar(.gz).

Layout readers see files by posix names relative to the root they were given (the names
an extraction of the archive would produce), so one reader serves the raw archive and its
extracted folder alike. What is not a regular file (a FIFO, socket or device, a broken or
self-looping symlink, an archive's links) is not among the names but kept in `special`, for
the readers to count. A file name that is not UTF-8 is a DataError naming it (escaped).
Archive names and sizes go through the checks extraction uses (imgdag.extract.ArchiveCheck,
default caps); a tar is listed to its end (imgdag.extract.check_tar_end), and damaged archive
data is a DataError naming the archive and the member.
"""
import bisect
import copy
import functools
import hashlib
import os
import stat
import tarfile
import zipfile
from pathlib import Path

from imgdag.errors import DataError
from imgdag.extract import DAMAGED_DATA_ERRORS, ZIP_MEMBER_ERRORS, ArchiveCheck, archive_kind, check_tar_end
from imgdag.textfiles import decode_text


class FileTree:
    """Files under a root, by relative posix name."""

    def __init__(self, path, names: list[str], special: list[str] = (), folders: list[str] = ()):
        self.path = Path(path)
        self._set = set(names)
        self.special = sorted(special)  # names of what is not a regular file
        self._folders = set(folders)  # an archive's folder entries (a folder may hold no file)

    @functools.cached_property
    def _names(self) -> list[str]:
        """All names, sorted when first asked for (a job that only reads files never sorts them)."""
        return sorted(self._set)

    def special_under(self, under: str) -> int:
        """How many special entries lie under the folder `under`."""
        prefix = under.rstrip("/") + "/"
        return sum(name.startswith(prefix) for name in self.special)

    def subfolders(self, under: str) -> list[str]:
        """Sorted names of the folders directly in the folder `under`: those holding files, and
        an archive's empty folder entries."""
        prefix = under.rstrip("/") + "/"
        return sorted({n[len(prefix):].split("/")[0] for n in self.names(prefix) if "/" in n[len(prefix):]}
                      | {f[len(prefix):] for f in self._folders if f.startswith(prefix) and "/" not in f[len(prefix):]})

    def files_directly_in(self, under: str) -> tuple[list[str], int]:
        """(sorted names of the files directly in the folder `under`, count of the special entries
        under it that are not inside one of `subfolders(under)`): what a reader that goes a
        subfolder at a time finds beside the subfolders."""
        prefix = under.rstrip("/") + "/"
        folders = set(self.subfolders(under))
        return ([n for n in self.names(prefix) if "/" not in n[len(prefix):]],
                sum(n.startswith(prefix) and n[len(prefix):].split("/")[0] not in folders for n in self.special))

    def names(self, under: str = "") -> list[str]:
        """Sorted names of all files, or of those under the folder `under`."""
        if not under:
            return list(self._names)
        prefix = under.rstrip("/") + "/"
        start = bisect.bisect_left(self._names, prefix)
        end = start
        while end < len(self._names) and self._names[end].startswith(prefix):
            end += 1
        return self._names[start:end]

    def has_file(self, name: str) -> bool:
        return name in self._set

    def has_dir(self, name: str) -> bool:
        prefix = name.rstrip("/") + "/"
        i = bisect.bisect_left(self._names, prefix)
        return i < len(self._names) and self._names[i].startswith(prefix)

    def where(self, name: str = "") -> str:
        """How to name a file of this tree in a message: `dir/name` or `archive:name`."""
        return str(self.path / name) if name else str(self.path)

    def find_root(self, marker: str, expected: str) -> str:
        """Shallowest prefix ('' or 'dir/') holding a file or folder named `marker`."""
        candidates = set()
        for name in self._names:
            parts = name.split("/")
            if marker in parts:
                i = parts.index(marker)
                candidates.add("".join(p + "/" for p in parts[:i]))
        if not candidates:
            raise DataError(self.where(), f"no {marker} found anywhere in it ({expected})")
        return min(candidates, key=lambda p: (p.count("/"), p))

    def read_bytes(self, name: str) -> bytes:
        raise NotImplementedError

    def read_text(self, name: str) -> str:
        """The text of a file, read as imgdag.textfiles reads every text file."""
        return decode_text(self.read_bytes(name), self.where(name))

    def local_path(self, name: str) -> Path | None:
        """The file's path on disk when the tree is a directory, else None."""
        return None

    def reopened(self) -> "FileTree":
        """This tree for a worker process forked from the one that opened it: the same listing,
        with an archive opened again (a forked file handle shares its read position)."""
        return self

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DirTree(FileTree):
    def __init__(self, path):
        path = Path(path)
        super().__init__(path, *_list_folder(path))

    def read_bytes(self, name: str) -> bytes:
        if name not in self._set:  # as an archive's tree: never a FIFO (which would block) nor outside the folder
            raise DataError(self.path / name, "not a file of the folder's listing (missing, a special file, "
                                              "or outside the folder)")
        try:  # a string join, not a Path: 64 px images read at 30,000 a second
            with open(os.path.join(self.path, name), "rb") as f:
                return f.read()
        except OSError as e:
            raise DataError(self.path / name, f"unreadable: {e}") from e

    def local_path(self, name: str) -> Path:
        return self.path / name

    def subfolders(self, under: str) -> list[str]:
        """Also the empty folders on disk."""
        local = self.path / under
        on_disk = {p.name for p in local.iterdir() if p.is_dir()} if local.is_dir() else set()
        return sorted(set(super().subfolders(under)) | on_disk)


class FolderTree(FileTree):
    """A directory listed one folder at a time, for readers that go a class folder at a time:
    `names(under)` walks only `under`, so such a reader holds one class's names, not the whole
    tree's (ImageNet's 1.28 M). The walk is DirTree's (`_list_folder`: links to folders not
    entered). `read_bytes` reads a name that is a regular file inside the folder (links to
    files followed, as DirTree's listing follows them); what is outside it, or not a regular
    file (a FIFO would block), is a DataError naming it."""

    def __init__(self, path):
        self.path = Path(path)
        self._walked = ("", [], [])  # the last walk: (under, names, special)

    def _walk(self, under: str) -> tuple[list[str], list[str]]:
        prefix = under.rstrip("/") + "/"
        if self._walked[0] != prefix:
            if any(os.path.islink(self.path / prefix[:i]) for i, c in enumerate(prefix) if c == "/"):
                names, special = [], []  # inside a link to a folder, which a walk does not enter
            else:
                names, special = _list_folder(self.path / prefix)
            self._walked = (prefix, sorted(prefix + n for n in names), [prefix + n for n in special])
        return self._walked[1], self._walked[2]

    def names(self, under: str = "") -> list[str]:
        if not under:
            raise ValueError("a FolderTree lists one folder at a time: give `under`")
        return list(self._walk(under)[0])

    def special_under(self, under: str) -> int:
        return len(self._walk(under)[1])

    def subfolders(self, under: str) -> list[str]:
        """Sorted names of the folders directly in `under` (links to folders included, as
        DirTree's do; a walk does not enter them)."""
        return sorted(entry.name for entry in _entries(self.path / under) if _holds(entry.is_dir))

    def files_directly_in(self, under: str) -> tuple[list[str], int]:
        prefix = under.rstrip("/") + "/"
        files, special = [], 0
        for entry in _entries(self.path / prefix):
            if _holds(entry.is_dir):
                continue
            if _holds(entry.is_file):
                files.append(_utf8_name(self.path, prefix + entry.name))
            else:
                special += 1
        return sorted(files), special

    def has_file(self, name: str) -> bool:
        return os.path.isfile(self.path / name)

    def has_dir(self, name: str) -> bool:
        return os.path.isdir(self.path / name)

    def find_root(self, marker: str, expected: str) -> str:
        """Shallowest prefix holding a file or folder named `marker`, level by level (links to
        folders not entered)."""
        level = [""]
        while level:
            found = sorted(p for p in level if os.path.lexists(self.path / p / marker))
            if found:
                return found[0]
            level = sorted(f"{p}{e.name}/" for p in level for e in _entries(self.path / p)
                           if _holds(e.is_dir) and not _holds(e.is_symlink))
        raise DataError(self.where(), f"no {marker} found anywhere in it ({expected})")

    def read_bytes(self, name: str) -> bytes:
        parts = name.split("/")
        if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise DataError(self.path / name, "not a file name inside the folder")
        path = os.path.join(self.path, name)
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                raise DataError(path, "not a regular file (a FIFO, socket, device or folder)")
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise DataError(path, f"unreadable: {e}") from e

    def local_path(self, name: str) -> Path:
        return self.path / name


class ZipTree(FileTree):
    def __init__(self, path):
        try:
            self._zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise DataError(path, f"corrupt zip: {e}") from e
        check = ArchiveCheck(path)
        self._info = {check.member(i.filename, i.file_size, i.compress_size): i
                      for i in self._zip.infolist() if not i.is_dir()}
        folders = [check.member(i.filename, 0, folder=True) for i in self._zip.infolist() if i.is_dir()]
        super().__init__(path, list(self._info), folders=folders)

    def where(self, name: str = "") -> str:
        return f"{self.path}:{name}" if name else str(self.path)

    def read_bytes(self, name: str) -> bytes:
        try:
            return self._zip.read(self._info[name])
        except (KeyError, *ZIP_MEMBER_ERRORS) as e:
            raise DataError(self.where(name), f"unreadable zip member: {e}") from e

    def reopened(self) -> "ZipTree":
        tree = copy.copy(self)
        try:
            tree._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(self.path, f"cannot open the zip again: {e}") from e
        return tree

    def close(self) -> None:
        self._zip.close()


class TarTree(FileTree):
    def __init__(self, path):
        try:
            self._tar = tarfile.open(path)
            members = self._tar.getmembers()
            check_tar_end(self._tar, path)
        except (tarfile.TarError, OSError, *DAMAGED_DATA_ERRORS) as e:
            if isinstance(e, OSError) and e.errno is not None:  # the system's (permission, disk), not the data's
                raise DataError(path, f"cannot read the tar: {e.strerror}") from e
            raise DataError(path, f"corrupt or truncated tar: {e}") from e
        check = ArchiveCheck(path)
        self._info = {check.member(m.name, m.size): m for m in members if m.isreg()}
        special = [check.member(m.name, 0) for m in members if not (m.isreg() or m.isdir())]
        folders = [check.member(m.name, 0, folder=True) for m in members if m.isdir()]
        super().__init__(path, list(self._info), special, folders)

    def where(self, name: str = "") -> str:
        return f"{self.path}:{name}" if name else str(self.path)

    def read_bytes(self, name: str) -> bytes:
        try:
            with self._tar.extractfile(self._info[name]) as f:
                return f.read()
        except (KeyError, tarfile.TarError, OSError, *DAMAGED_DATA_ERRORS) as e:
            raise DataError(self.where(name), f"unreadable tar member: {e}") from e

    def reopened(self) -> "TarTree":
        tree = copy.copy(self)  # members are read at the offsets the listing found: no second scan
        try:
            tree._tar = tarfile.open(self.path)
        except (tarfile.TarError, OSError) as e:
            raise DataError(self.path, f"cannot open the tar again: {e}") from e
        return tree

    def close(self) -> None:
        self._tar.close()


def _list_folder(root: Path) -> tuple[list[str], list[str]]:
    """(regular files, other entries that are not folders) under `root`, as relative posix names,
    classified as os.walk + os.path.isfile would (links followed, linked folders not entered,
    unreadable folders passed over) but from one os.scandir per folder: the directory listing
    gives each entry's type, so only a symlink costs a stat."""
    names, special = [], []
    folders = [("", str(root))]
    while folders:
        prefix, folder = folders.pop()
        for entry in _entries(folder):
            name = prefix + entry.name
            if _holds(entry.is_dir):
                if not _holds(entry.is_symlink):
                    folders.append((name + "/", entry.path))
                continue
            (names if _holds(entry.is_file) else special).append(_utf8_name(root, name))
    return names, special


def folder_state(root) -> str:
    """What a folder read in place holds, as one short text: a hash of every file's relative name,
    size, modification time and inode (the key under which DVC keeps a file's hash: what
    changes for DVC changes here) and of every folder's name, walked as `_list_folder` walks
    (links to files followed, linked folders not entered); a stat per file, no byte read. ''
    when `root` is not a folder. Snakemake reruns the jobs that read a raw folder in place when
    it changes (rules/raw_state.smk): an image inside changed, added, removed or renamed, which
    the folder's own time does not show."""
    if not os.path.isdir(root):
        return ""
    digest, count = hashlib.blake2b(digest_size=16), 0
    folders = [("", os.fspath(root))]
    while folders:
        prefix, folder = folders.pop()
        lines = []
        for entry in sorted(_entries(folder), key=lambda e: e.name):
            name = prefix + entry.name
            if _holds(entry.is_dir) and not _holds(entry.is_symlink):
                folders.append((name + "/", entry.path))
                lines.append(f"{name}/\n")
                continue
            try:
                st = entry.stat()
                lines.append(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n")
            except OSError:
                lines.append(f"{name}\0unreadable\n")
            count += 1
        digest.update("".join(lines).encode("utf-8", "surrogateescape"))
    return f"{count} files, blake2b {digest.hexdigest()}"


def _utf8_name(root: Path, name: str) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(root / name, "the file name is not UTF-8 (maps and lists are UTF-8 text); "
                                     "rename it") from None
    return name


def _entries(folder) -> list:
    """The entries of a folder; none when it cannot be listed (os.walk's rule)."""
    try:
        with os.scandir(folder) as listing:
            return list(listing)
    except OSError:
        return []


def _holds(test) -> bool:
    """A DirEntry test (is_dir, is_file, is_symlink); False when the entry cannot be read (os.path's rule)."""
    try:
        return test()
    except OSError:
        return False


def open_tree(path) -> FileTree:
    """A FileTree over a directory, a zip or a tar; DataError if it is none of these."""
    path = Path(path)
    if path.is_dir():
        return DirTree(path)
    if not path.exists():
        raise DataError(path, "not found (expected a folder, a .zip or a .tar)")
    return ZipTree(path) if archive_kind(path) == "zip" else TarTree(path)
