"""Surviving faults: one trainer per run folder, and named points where tests kill a job.

`lock_run(folder)` holds an flock on `folder/.lock` for the rest of the process: a second job
on the same run (a rerun while an orphaned trainer still writes, two `snakemake` calls)
stops with a clear error instead of interleaving checkpoints. The kernel drops the lock
when its holder dies, SIGKILL included, so a killed run never blocks its rerun.

`stop_with_snakemake()` (every script calls it through imgdag.cli.run; those that load torch
already when they import imgdag.threads, first, so that a job orphaned during torch's seconds of
loading ends too): a job whose Snakemake process is killed is an orphan nobody waits for; it
would keep writing into a run that the rerun redoes. A daemon thread watches the nearest
ancestor process that is `snakemake` (the `bash -c` and `| tee` processes between them aside;
under `dvc repro` the stage's snakemake, under SLURM the job's own) and any `dvc` above it, and
once one is gone, kills this job's children (loader workers) and exits 1 at once: nothing
finished-looking is written, since outputs are renamed into place only when complete. With its
only job failed, a `dvc repro` stage's Snakemake then ends too, releasing its lock. Processes
are read through psutil (any platform it supports); where it cannot read the processes above
the job (access denied, an unsupported platform), the job says so in one warning line and runs
unwatched.

`fault_point(name)`: with IMGDAG_FAULT=NAME[:N] in the environment the process SIGKILLs
itself the Nth time (default: the first) it passes the point NAME; with NAME[:N]:hang its
main thread stops there for good instead, as a stuck job does (so a test can kill the
Snakemake process around a job that is still running). The kill tests use it to stop a job
at a known place (tests/test_kill_recovery.py lists the points; "check", in an image-check
worker, is tests/test_pool.py's).
"""
import fcntl
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO

import psutil

from imgdag.errors import DataError

_passes: Counter = Counter()
_held: dict[Path, IO[str]] = {}  # folder -> its open, locked .lock file
_watch: list[int] = []  # the Snakemake pid that stop_with_snakemake watches, once it does


def fault_point(name: str) -> None:
    """SIGKILL this process here (or hang its main thread) when IMGDAG_FAULT names this point
    (and pass count)."""
    spec = os.environ.get("IMGDAG_FAULT")
    if not spec:
        return
    point, nth, action = (spec.split(":") + ["", ""])[:3]
    if point == name:
        _passes[name] += 1
        if _passes[name] == int(nth or 1):
            if action == "hang":
                threading.Event().wait()
            os.kill(os.getpid(), signal.SIGKILL)


def runs(program: str, cmdline: list[str]) -> bool:
    """Whether a command line runs `program` (`snakemake ...`, `python .../snakemake ...`,
    `python -m snakemake ...`); a shell whose command line mentions it does not."""
    names = [Path(a).name for a in cmdline[:3]]
    return program in names[:2] or names[1:3] == ["-m", program]


def _runs(program: str, proc: psutil.Process) -> bool:
    """Whether `proc` runs `program`; False when it is gone."""
    try:
        return runs(program, proc.cmdline())
    except psutil.NoSuchProcess:
        return False


def snakemake_ancestor(pid: int | None = None) -> int | None:
    """The pid of the nearest ancestor of process `pid` (default: this one) that runs
    snakemake; None when there is none. psutil.Error when the ancestors cannot be read."""
    return next((p.pid for p in psutil.Process(pid or os.getpid()).parents() if _runs("snakemake", p)), None)


def _warn_unprotected(reason: str) -> None:
    print(f"warning: this job cannot watch the Snakemake process above it ({reason}): if that "
          "Snakemake is killed, stop this job by hand before rerunning", file=sys.stderr, flush=True)


def stop_with_snakemake(interval: float = 0.5) -> int | None:
    """When a Snakemake process started this job, watch it (and any `dvc` above it) every
    `interval` seconds from a daemon thread and end this job (children first, exit 1) as soon
    as one is gone; psutil's start-time check guards against reused pids. Returns the Snakemake
    pid, or None (with one warning line when the processes above cannot be read).
    A second call finds the watch running and starts none."""
    if _watch:
        return _watch[0]
    try:
        pid = snakemake_ancestor()
        if pid is None:
            return None
        snakemake = psutil.Process(pid)
        watched = [snakemake] + [p for p in snakemake.parents() if _runs("dvc", p)]
    except psutil.NoSuchProcess:  # gone already: a rerun redoes this job; nothing to watch
        return None
    except psutil.Error as e:  # access denied, or a platform psutil cannot read
        _warn_unprotected(f"{type(e).__name__}: {e}")
        return None
    _watch.append(pid)

    def gone(proc: psutil.Process) -> bool:
        try:
            # False once the pid is reused; a zombie is gone too
            return not proc.is_running() or proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
        except psutil.NoSuchProcess:
            return True

    def watch():
        while not (ended := [p for p in watched if gone(p)]):
            time.sleep(interval)
        what = "Snakemake process that started this job" if ended[0] is snakemake else "dvc process above it"
        try:
            for child in psutil.Process().children(recursive=True):
                try:
                    child.kill()
                except psutil.Error:
                    pass
            print(f"error: the {what} (pid {ended[0].pid}) is gone; "
                  "stopping, so that no orphan writes into the run (rerun to finish)",
                  file=sys.stderr, flush=True)
        finally:
            os._exit(1)

    threading.Thread(target=watch, name="stop_with_snakemake", daemon=True).start()
    return pid


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
