"""Surviving faults: one trainer per run folder, and named points where tests kill a job.

`lock_run(folder)` holds an flock on `folder/.lock` for the rest of the process: a second job
on the same run (a rerun while an orphaned trainer still writes, two `snakemake` calls)
stops with a clear error instead of interleaving checkpoints. The kernel drops the lock
when its holder dies, SIGKILL included, so a killed run never blocks its rerun.

`fault_point(name)`: with IMGDAG_FAULT=NAME[:N] in the environment the process SIGKILLs
itself the Nth time (default: the first) it passes the point NAME. The kill tests use it
to stop a job at a known place (tests/test_kill_recovery.py lists the points).
"""
import fcntl
import os
import signal
from collections import Counter
from pathlib import Path
from typing import IO

from imgdag.errors import DataError

_passes: Counter = Counter()
_held: dict[Path, IO[str]] = {}  # folder -> its open, locked .lock file


def fault_point(name: str) -> None:
    """SIGKILL this process here when IMGDAG_FAULT names this point (and pass count)."""
    spec = os.environ.get("IMGDAG_FAULT")
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point == name:
        _passes[name] += 1
        if _passes[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def lock_run(folder) -> IO[str]:
    """Lock `folder/.lock` (flock) until the returned file is closed or the process ends;
    DataError naming the holder when another process has it (this process may ask again)."""
    folder = Path(folder).resolve()
    held = _held.get(folder)
    if held is not None and not held.closed:
        return held
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / ".lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise DataError(folder, f"another job ({holder}) is writing this run; wait for it or stop it, "
                                "then rerun") from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    _held[folder] = lock
    return lock
