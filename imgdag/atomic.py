"""Atomic outputs: write to a hidden temporary sibling, then rename over the target.

A killed run leaves at most a `.NAME.tmp-*` file behind, never a half-written file under
the real name.
"""
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _temp_sibling(path: Path, directory: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # keep the real suffix last: writers such as Pillow and numpy choose the format by it
    prefix, suffix = f".{path.stem}.tmp-", path.suffix
    if directory:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=path.parent))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path):
    """Yield a temporary path to write; on success it is renamed to `path`."""
    path = Path(path)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Open a temporary file for writing; on success it is renamed to `path`."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def atomic_torch_save(obj, path) -> None:
    """torch.save `obj` to `path` atomically, the same object giving the same bytes: torch names
    its zip entries after a path it is given (here the random temporary name), so it gets an
    open file instead, whose entries it names `archive/`."""
    import torch  # here, not at the top: scripts that only move bytes never import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


@contextmanager
def atomic_dir(path):
    """Yield a temporary directory to fill; on success it replaces the directory `path`."""
    path = Path(path)
    tmp = _temp_sibling(path, directory=True)
    try:
        yield tmp
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
