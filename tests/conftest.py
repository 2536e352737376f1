"""Shared fixtures: the repository root, the real-data folder (skipped when absent), one finished
MNIST recipe and one finished demo (every recipe) for the end-to-end tests."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from e2e import clone_workspace, copy_repo, sh

# before any test module loads torch: the test process runs torch at the project's vector ISA
# (compute.cpu_isa's default), as every job does, whatever order the tests run in; a script a
# test runs in this process then passes its ISA check with the default --cpu-isa
import imgdag.threads  # noqa: E402,F401  isort: skip
from imgdag.images import BatchArrays  # noqa: E402  isort: skip

ROOT = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("IMGDAG_REALDATA", ROOT.parent / "shared" / "realdata"))

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def realdata_path(name: str) -> Path:
    """Path of ../shared/realdata/<name>; skips the test with a reason when it is absent."""
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"real data {path} is absent (only the project's shared checkout has it)")
    return path


def with_peak_memory(run) -> tuple:
    """(what `run()` returned, the most memory Python's allocator held while it ran: tracemalloc's
    peak, in bytes)."""
    import tracemalloc

    tracemalloc.start()
    try:
        return run(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def file_stamps(ws: Path) -> dict:
    return {str(p.relative_to(ws)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in ws.rglob("*") if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="session")
def mnist_done(tmp_path_factory):
    """A copy of the repository whose mnist_lenet5 recipe Snakemake has run once for the whole
    session (`snakemake --cores 2 mnist_lenet5`, params committed with 1 epoch and 3 latency
    repeats: for plumbing, not accuracy); nothing else ran, dvc.lock is the committed baseline.

    Read-only: a test that changes anything (params, dvc.lock, a rerun) works in its own copy,
    `e2e.clone_workspace(mnist_done, tmp_path / "repo")` (`cp -a`, a few seconds), which Snakemake
    sees as finished too. Session teardown fails if a file here changed."""
    ws = copy_repo(tmp_path_factory.mktemp("mnist_done") / "repo")
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["recipes"]["mnist_lenet5"]["train"]["epochs"] = 1
    params["recipes"]["mnist_lenet5"]["evaluate"]["latency_repeats"] = 3
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "commit", "-qam", "mnist_lenet5: one epoch"], ws)
    sh(["snakemake", "--cores", "2", "mnist_lenet5"], ws)
    yield from read_only(ws)


@pytest.fixture(scope="session")
def demo_done(mnist_done, tmp_path_factory):
    """A copy of `mnist_done` given back the repository's params.yaml, on which Snakemake has run
    the whole demo once for the session (`snakemake --cores 2`: every recipe; MNIST retrains at
    the committed params on the data mnist_done prepared). Read-only, as mnist_done: a test that
    changes anything works in `e2e.clone_workspace(demo_done, ...)`."""
    ws = clone_workspace(mnist_done, tmp_path_factory.mktemp("demo_done") / "repo")
    shutil.copy2(ROOT / "params.yaml", ws / "params.yaml")
    sh(["git", "commit", "-qam", "the repository's params"], ws)
    sh(["snakemake", "--cores", "2"], ws)
    yield from read_only(ws)


@pytest.fixture
def allocated(monkeypatch) -> list:
    """The address of each fresh array any BatchArrays allocates (either loader's), in order
    (no reference to the array: that would keep it busy)."""
    addresses, take = [], BatchArrays.take

    def counted_take(self):
        before = {id(a) for a in self.arrays}
        array = take(self)
        if id(array) not in before:
            addresses.append(array.ctypes.data)
        return array

    monkeypatch.setattr(BatchArrays, "take", counted_take)
    return addresses


def read_only(ws: Path):
    """Yield ws; at session teardown, fail if a test changed a file in it."""
    stamps = file_stamps(ws)
    yield ws
    changed = sorted(set(stamps.items()) ^ set(file_stamps(ws).items()))
    assert not changed, f"a test changed the shared workspace (use e2e.clone_workspace): {changed[:5]}"


# Free disk space where the tests write (pytest's tmp tree): at the start, and the lowest seen
# after any test, printed at the end of the run (the part of a CI log one sees). A run whose
# disk fills fails with OSError ENOSPC in whichever fixture writes next; this line names it.
DISK = {"start": None, "low": None, "after": None}


def _free_gb(config) -> float:
    where = config.option.basetemp or tempfile.gettempdir()
    while not os.path.exists(where):
        where = os.path.dirname(where)
    return shutil.disk_usage(where).free / 2**30


def pytest_sessionstart(session):
    DISK["start"] = DISK["low"] = _free_gb(session.config)


def pytest_runtest_teardown(item):
    free = _free_gb(item.config)
    if free < DISK["low"]:
        DISK["low"], DISK["after"] = free, item.nodeid


@pytest.hookimpl(trylast=True)  # after the durations: next to the final counts
def pytest_terminal_summary(terminalreporter, config):
    if DISK["start"] is None:
        return
    line = f"free disk where tests write: {DISK['start']:.1f} GiB at the start, {DISK['low']:.1f} GiB at the lowest"
    if DISK["after"]:
        line += f" (at the end of {DISK['after']})"
    if DISK["low"] < 1:
        line += ": THE DISK RAN (NEARLY) FULL; errors above may be ENOSPC, not the code"
    terminalreporter.write_line(line, red=DISK["low"] < 1)
