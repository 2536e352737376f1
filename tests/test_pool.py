"""Worker pools stop when asked, and never wait forever (imgdag.pool).

The hangs these guard against: pool workers that inherited a flag-only SIGTERM handler (a test
drove Snakemake's API in the pytest process) ignored `Pool.terminate()`; CPython's terminate
killed a worker halfway through a result and then waited for its lock; a worker that died
while the pool ran left its task's result awaited forever. Each case runs in a child process
with a flag-only SIGTERM handler and must end within a minute.
"""
import os
import subprocess
import sys
import textwrap
import time

import pytest
from e2e import ROOT
from PIL import Image

from imgdag.pool import process_pool

FLAG_ONLY_SIGTERM = """
import signal
signal.signal(signal.SIGTERM, lambda signum, frame: None)  # as Snakemake's scheduler leaves it
"""


def run_child(code: str) -> subprocess.CompletedProcess:
    """Run `code` after installing a flag-only SIGTERM handler; fails the test if it hangs."""
    try:
        return subprocess.run([sys.executable, "-c", FLAG_ONLY_SIGTERM + textwrap.dedent(code)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("the pool did not stop within a minute") from e


def test_a_pool_terminates_under_a_flag_only_sigterm_handler():
    done = run_child("""
        import time
        from imgdag.pool import process_pool
        pool = process_pool(2)
        pool.map_async(time.sleep, [30, 30])
        time.sleep(0.5)
        pool.terminate()
        pool.join()
        print("stopped")
    """)
    assert done.returncode == 0 and "stopped" in done.stdout, done.stderr


def test_packing_with_workers_stops_at_a_bad_image_under_a_flag_only_sigterm_handler(tmp_path):
    done = run_child(f"""
        from pathlib import Path
        import numpy as np
        from PIL import Image
        from imgdag.errors import DataError
        from imgdag.formats.lst import LstEntry, write_lst
        from imgdag.formats.recordio_packer import PackOptions, pack

        root = Path({str(tmp_path)!r})
        entries = []
        # workers still busy resizing when the bad image stops packing (3 of 3 hung before)
        for i in range(200):
            pixels = np.random.default_rng(i).integers(0, 255, (600, 600, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"{{i}}.png")
            entries.append(LstEntry(i, (0.0,), f"{{i}}.png"))
        (root / "bad.png").write_bytes(b"not an image")
        entries.insert(1, LstEntry(200, (0.0,), "bad.png"))
        write_lst(root / "a.lst", entries)
        try:
            pack(root / "a.lst", root, root / "a.rec", root / "a.idx", PackOptions(resize=256), num_workers=2,
                 bad_images="error")
        except DataError as e:
            print("refused:", e)
    """)
    assert done.returncode == 0 and "refused:" in done.stdout and "bad.png" in done.stdout, done.stderr


def _unpickled_slowly():
    time.sleep(1.0)
    return "slow"


class _SlowToUnpickle:
    def __reduce__(self):
        return _unpickled_slowly, ()


def _result(i):
    if i == 0:
        return _SlowToUnpickle()
    time.sleep(0.2)  # arrives while the parent is still unpickling result 0, and waits in the pipe
    return b"x" * 100_000


def test_the_worker_handler_sleeps_while_a_result_waits_in_the_pipe():
    """CPython's Pool spins its worker-handler thread while a result is unread (bpo-35493's
    wait set); ours does not, so a parent writing the results keeps its CPU."""
    with process_pool(2) as pool:
        handler = time.pthread_getcpuclockid(pool._worker_handler.ident)
        before = time.clock_gettime(handler)
        assert pool.map(_result, [0, 1], chunksize=1) == ["slow", b"x" * 100_000]
        spent = time.clock_gettime(handler) - before
    assert spent < 0.1, f"the worker handler used {spent:.2f} s of CPU while results waited (about 0.8 s spinning)"


LATE_RESULT = """
import multiprocessing, time
import multiprocessing.pool
from multiprocessing.queues import SimpleQueue
from multiprocessing.reduction import ForkingPickler

def put(self, obj):  # a worker writes each result after the first slowly: half, a pause, the rest
    data = ForkingPickler.dumps(obj)
    with self._wlock:
        if multiprocessing.parent_process() is None or obj[1] == 0:
            self._writer.send_bytes(data)
            return
        message = len(data).to_bytes(4, "big") + bytes(data)
        self._writer._send(message[: len(message) // 2])
        time.sleep(1.0)
        self._writer._send(message[len(message) // 2:])

wait_for_updates = multiprocessing.pool.Pool._wait_for_updates

def late(sentinels, change_notifier, timeout=None):  # a loaded machine: the worker handler runs late
    wait_for_updates(sentinels, change_notifier, timeout)
    time.sleep(0.5)

def task(i):
    time.sleep(0.3 if i else 0)
    return i

SimpleQueue.put = put  # before the pool forks: its workers write so
multiprocessing.pool.Pool._wait_for_updates = staticmethod(late)
"""


def test_terminate_waits_for_the_result_a_worker_is_writing():
    """CPython's terminate kills the workers while its threads still use the queues they share
    (python/cpython#96995). A worker killed halfway through a result leaves the result queue
    locked, and terminate waits for its task handler forever: a CI run hung so at a bad image.
    Here the first result stops the run, and a worker starts writing the second before the
    worker handler, late, lets terminate go on."""
    done = run_child(LATE_RESULT + textwrap.dedent("""
        from imgdag.pool import process_pool
        start = time.monotonic()
        try:
            with process_pool(2) as pool:
                for result in pool.imap(task, range(40)):
                    raise RuntimeError("the first result stops the run")
        except RuntimeError:
            print(f"stopped in {time.monotonic() - start:.1f} s")
    """))
    assert done.returncode == 0 and "stopped" in done.stdout, done.stderr


def test_terminate_gives_up_on_a_lock_that_a_killed_worker_holds():
    """A worker killed from outside (the OOM killer, a signal to its process group) while it
    waited for a task keeps the task queue's lock for good; terminate waits STOP_SECONDS for it,
    then kills the other workers and returns."""
    done = run_child("""
        import os, signal, time
        import imgdag.pool
        imgdag.pool.STOP_SECONDS = 2.0
        with imgdag.pool.process_pool(2) as pool:
            assert pool.map(abs, range(4)) == [0, 1, 2, 3]
            time.sleep(0.2)  # both workers idle: one of them waits for a task, holding the lock
            for worker in pool._pool:
                os.kill(worker.pid, signal.SIGKILL)
            time.sleep(0.2)
            start = time.monotonic()
        print(f"stopped in {time.monotonic() - start:.1f} s")
    """)
    assert done.returncode == 0 and "stopped" in done.stdout, done.stderr
    assert float(done.stdout.split()[2]) < 2.0 + 1.0, done.stdout


@pytest.mark.parametrize("method", ["imap", "imap_unordered", "map_async"])
def test_a_worker_that_dies_fails_the_pending_results(method):
    """A worker killed while the pool runs (the out-of-memory killer) loses its task; CPython's
    Pool replaces the worker and waits for that task's result forever. Ours fails the pending
    results with WorkerDied."""
    done = run_child(f"""
        import os, signal, time
        from imgdag.errors import WorkerDied
        from imgdag.pool import process_pool

        def task(i):
            time.sleep(0.05)
            return i

        with process_pool(2) as pool:
            results = pool.{method}(task, range(200))
            time.sleep(0.3)
            os.kill(pool._pool[0].pid, signal.SIGKILL)
            try:
                list(results) if "{method}" != "map_async" else results.get()
            except WorkerDied as e:
                print("stopped:", e)
    """)
    assert done.returncode == 0 and "stopped: a worker process died (killed by SIGKILL" in done.stdout, done.stderr


def test_a_script_whose_check_worker_dies_exits_1_with_one_line(tmp_path):
    for split in ("train", "validation"):
        for wnid in ("n01", "n02"):
            (tmp_path / split / wnid).mkdir(parents=True)
            for i in range(20):
                Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / split / wnid / f"{wnid}_{i}.JPEG")
    done = subprocess.run([sys.executable, ROOT / "scripts" / "write_cntk_maps.py", "--raw", tmp_path,
                           "--out", tmp_path / "maps", "--workers", "2"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "IMGDAG_FAULT": "check:3"})
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: a worker process died (killed by SIGKILL"), \
        done.stderr
    assert not (tmp_path / "maps").exists()


def test_a_pool_collected_in_its_own_result_thread_terminates_cleanly():
    """A pool whose last reference is its imap iterator is collected, and terminated, in its
    result handler thread when the last result arrives; terminate does not join that thread."""
    done = run_child("""
        import multiprocessing, time
        from imgdag.pool import process_pool
        print(sum(process_pool(2).imap(abs, range(100))))
        time.sleep(0.5)
        print("children", len(multiprocessing.active_children()))
    """)
    assert done.returncode == 0 and done.stdout.split() == ["4950", "children", "0"], done.stderr
    assert "Error" not in done.stderr, done.stderr
