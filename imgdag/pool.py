"""Worker process pools that can always be stopped.

A forked worker inherits its parent's signal handlers. A parent that installed a SIGTERM
handler which only sets a flag (Snakemake does, and so does any library that drives it in
process) would leave workers that ignore `Pool.terminate()`, and the pool then waits for them
forever. Every worker here starts by restoring the default SIGTERM and SIGINT actions.
"""
import multiprocessing
import multiprocessing.pool
import signal


def _start_worker(initializer, initargs) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if initializer is not None:
        initializer(*initargs)


def process_pool(workers: int, initializer=None, initargs=()) -> multiprocessing.pool.Pool:
    """A pool of `workers` processes (forked where the platform can) with default SIGTERM and
    SIGINT, each running `initializer(*initargs)` first."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    return multiprocessing.get_context(method).Pool(workers, _start_worker, (initializer, initargs))
