"""Worker pools stop when asked, whatever SIGTERM handler their parent process holds.

The hang this guards against: a test drove Snakemake's API in the pytest process, whose
scheduler left a SIGTERM handler that only sets a flag; pool workers forked afterwards
inherited it, ignored `Pool.terminate()`, and packing a `.rec` that hit a bad image waited
forever. Each case runs in a child process with such a handler and must end within seconds.
"""
import subprocess
import sys
import textwrap
import time

from e2e import ROOT

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
        raise AssertionError("the pool did not stop: its workers ignore SIGTERM") from e


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
