"""Atomic writes under faults: a full disk names the output, stale temporaries of dead processes go;
a job that cannot watch its Snakemake says so."""
import errno
import os
import subprocess
import sys

import psutil
import pytest

from imgdag import atomic, faults
from imgdag.atomic import atomic_dir, atomic_open, remove_stale_temps
from imgdag.cli import run
from imgdag.errors import DataError


def test_full_disk_is_a_data_error_naming_the_output(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(DataError, match=r"model\.pt: no space left on the device"):
        with atomic_open(target, "w") as f:
            f.write("new")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["model.pt"]
    with pytest.raises(DataError, match=r"images: no space left"):
        with atomic_dir(tmp_path / "images"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(tmp_path) == ["model.pt"]


def test_full_disk_outside_atomic_writes_is_one_line(capsys):
    def main():
        raise OSError(errno.ENOSPC, "No space left on device", "data/x.rec")
    with pytest.raises(SystemExit) as e:
        run(main)
    assert e.value.code == 1
    assert capsys.readouterr().err == "error: data/x.rec: no space left on the device; free space, then rerun\n"


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    host = atomic._HOST
    names = {"dead_file": f".train.tmp-{host}-{dead_pid}-abc.rec",
             "live_file": f".train.tmp-{host}-{os.getpid()}-abc.rec",
             "other_host": f".train.tmp-otherhost-{dead_pid}-abc.rec",
             "dead_dir": f".images.tmp-{host}-{dead_pid}-xyz"}
    for key, name in names.items():
        (tmp_path / name).mkdir() if key == "dead_dir" else (tmp_path / name).write_bytes(b"x")
    (tmp_path / names["dead_dir"] / "0.png").write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == 2
    assert sorted(os.listdir(tmp_path)) == sorted([names["live_file"], names["other_host"]])


def test_a_job_that_cannot_read_the_processes_above_it_says_so_in_one_line(monkeypatch, capsys):
    """Orphan protection never turns itself off without a word (tests/test_kill_recovery.py runs it)."""
    assert faults.stop_with_snakemake() is None  # no snakemake above pytest: nothing to watch, silent
    assert capsys.readouterr().err == ""

    def denied(self):
        raise psutil.AccessDenied(self.pid)
    monkeypatch.setattr(psutil.Process, "parents", denied)
    assert faults.stop_with_snakemake() is None
    err = capsys.readouterr().err
    assert err.startswith("warning: this job cannot watch the Snakemake process above it (AccessDenied")
    assert err.count("\n") == 1
