"""Atomic outputs: write to a hidden temporary sibling, then rename over the target.

A killed run leaves at most a `.NAME.tmp-HOST-PID-*` file or folder behind, never a
half-written file under the real name. The first atomic write of a process into a folder
removes the temporaries there that this host's dead processes left (a killed pack can
leave gigabytes); those of live processes and of other hosts are kept.

A full disk while writing is a DataError naming the output.
"""
import errno
import json
import os
import re
import shutil
import socket
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from imgdag.errors import DataError

_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())
_TEMP = re.compile(rf"\..*\.tmp-{re.escape(_HOST)}-(\d+)-")
_cleaned: set[str] = set()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder) -> int:
    """Remove the temporaries in `folder` left by dead processes of this host; returns how many."""
    removed = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _TEMP.match(entry.name)
            if match and not _pid_alive(int(match.group(1))):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    Path(entry.path).unlink(missing_ok=True)
                removed += 1
    return removed


def _temp_sibling(path: Path, directory: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if str(path.parent) not in _cleaned:
        _cleaned.add(str(path.parent))
        remove_stale_temps(path.parent)
    # keep the real suffix last: writers such as Pillow and numpy choose the format by it
    prefix, suffix = f".{path.stem}.tmp-{_HOST}-{os.getpid()}-", path.suffix
    if directory:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=path.parent))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextmanager
def _naming_a_full_disk(path):
    """A full disk (ENOSPC) inside the block becomes one DataError naming the output `path`."""
    try:
        yield
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        raise DataError(path, "no space left on the device while writing it; free space, then rerun") from None


@contextmanager
def atomic_path(path):
    """Yield a temporary path to write; on success it is renamed to `path`."""
    path = Path(path)
    tmp = _temp_sibling(path)
    try:
        with _naming_a_full_disk(path):
            yield tmp
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _open_without_truncating(path, flags):
    # the temporary is new and empty: O_TRUNC would change nothing, except that ext4
    # (auto_da_alloc) then writes the whole file out when it is closed, as it does for a file
    # rewritten in place. The rename over an existing output still makes ext4 write it out
    # (its guard for replaced files): kept, as is the absence of an fsync
    return os.open(path, flags & ~os.O_TRUNC, 0o666)


@contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Open a temporary file for writing; on success it is renamed to `path`."""
    with atomic_path(path) as tmp, open(tmp, mode, opener=_open_without_truncating, **kwargs) as f:
        yield f


def atomic_write_json(path, value) -> None:
    """Write `value` as indented JSON to `path`, atomically."""
    with atomic_open(path, "w") as f:
        json.dump(value, f, indent=2)


def _interned(obj):
    """`obj` with the strings of its dicts, lists and tuples interned. Pickle writes a string it
    meets twice as a reference to the first, so equal states built differently (fresh, or
    partly loaded from a checkpoint) would otherwise give different bytes."""
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, dict):
        out = type(obj)((_interned(k), _interned(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # a module state_dict's versions
            out._metadata = _interned(obj._metadata)
        return out
    if type(obj) in (list, tuple):
        return type(obj)(_interned(v) for v in obj)
    return obj


def atomic_torch_save(obj, path) -> None:
    """torch.save `obj` to `path` atomically, equal objects giving equal bytes: torch names its
    zip entries after a path it is given (here the random temporary name), so it gets an open
    file instead, whose entries it names `archive/`; and strings are interned (_interned).
    A failed write (a full disk) is raised as the OSError it is, not as the RuntimeError that
    torch's zip writer raises while closing after it."""
    import torch  # here, not at the top: scripts that only move bytes never import torch

    with atomic_open(path, "wb") as f:
        try:
            torch.save(_interned(obj), f)
        except RuntimeError as e:
            if isinstance(e.__context__, OSError):
                raise e.__context__ from None
            raise


@contextmanager
def atomic_dir(path):
    """Yield a temporary directory to fill; on success it replaces the directory `path`.
    A DataError about a file inside the temporary directory names it under `path`."""
    path = Path(path)
    tmp = _temp_sibling(path, directory=True)
    try:
        with _naming_a_full_disk(path):
            try:
                yield tmp
            except DataError as e:
                if not Path(e.path).is_relative_to(tmp):
                    raise
                raise DataError(path / Path(e.path).relative_to(tmp), e.problem) from None
        os.chmod(tmp, 0o755)
        if path.exists():
            old = _temp_sibling(path, directory=True)
            os.replace(path, old / "old")
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
